/**
 * The rule every `-o/--out` follows: an output never overwrites the command's own inputs (even with --force),
 * and replaces an existing file or non-empty directory only with `--force`. Checked before any work is done.
 */
import { lstatSync, readdirSync, realpathSync, type Stats, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { NrtError } from "../errors.js";

export interface OutputRule {
  /** what the output is: one file, or a directory nrt writes whole */
  kind: "file" | "dir";
  /** --force was given: an existing output may be replaced */
  force?: boolean;
  /** files the command reads */
  inputFiles?: readonly (string | undefined)[];
  /** directories the command reads (a model directory): nothing inside one that exists may be replaced */
  inputDirs?: readonly (string | undefined)[];
}

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}

/** The real path of `p`, or of its nearest existing ancestor joined with the rest; and a file on the way, if any. */
function realish(p: string): { real: string; fileOnTheWay: string | null } {
  const abs = resolve(p);
  let rest = "";
  for (let d = abs; ; d = dirname(d)) {
    let st: Stats | null = null;
    try {
      st = statSync(d);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ELOOP") throw new NrtError("a loop of symbolic links (ELOOP)", p);
      if (code !== "ENOENT" && code !== "ENOTDIR") throw e;
    }
    if (st !== null) {
      const real = realpathSync(d);
      return { real: rest ? join(real, rest) : real, fileOnTheWay: rest && !st.isDirectory() ? d : null };
    }
    if (d === dirname(d)) return { real: abs, fileOnTheWay: null };
    rest = rest ? join(basename(d), rest) : basename(d);
  }
}

const inside = (child: string, parent: string): boolean => {
  const r = relative(parent, child);
  return r !== "" && r !== ".." && !r.startsWith(`..${sep}`) && !isAbsolute(r);
};

/** Checks `out` (named `flag` in errors) against `rule`; throws an NrtError saying what is wrong. */
export function checkOutput(out: string, rule: OutputRule, flag = "-o"): void {
  const { real, fileOnTheWay } = realish(out);
  const where = `${flag} ${out}`;
  if (fileOnTheWay !== null) throw new NrtError(`cannot be created: ${fileOnTheWay} is a file, not a directory`, where);
  const st = lstatOrNull(out);
  for (const f of rule.inputFiles ?? []) {
    if (f === undefined || lstatOrNull(f) === null) continue;
    const rf = realish(f).real;
    if (rf === real || (rule.kind === "dir" && inside(rf, real)))
      throw new NrtError(`would overwrite ${f}, an input of this command`, where);
  }
  for (const d of rule.inputDirs ?? []) {
    if (d === undefined || lstatOrNull(d) === null) continue;
    const rd = realish(d).real;
    if (rd === real || (st !== null && inside(real, rd)) || (rule.kind === "dir" && inside(rd, real)))
      throw new NrtError(`would overwrite ${d} (or a file in it), an input of this command`, where);
  }
  if (st === null) return;
  const isDir = st.isDirectory() || (st.isSymbolicLink() && lstatOrNull(real)?.isDirectory());
  if (rule.kind === "file") {
    if (isDir) throw new NrtError("is a directory; give the name of the file to write", where);
    if (!rule.force) throw new NrtError("already exists (use --force to overwrite it)", where);
    return;
  }
  if (!isDir) throw new NrtError("exists and is not a directory", where);
  if (readdirSync(out).length > 0 && !rule.force)
    throw new NrtError("already exists and is not empty (use --force to replace it)", where);
}
