/**
 * A run directory is nrt's (SPEC §6): created whole (its settings written first, in a temporary directory that is
 * then renamed into place), locked while a process trains in it (run-lock.ts), refused when it already holds
 * anything, and written without following symbolic links (io/append.ts; atomic writes replace, never follow).
 */
import { randomBytes } from "node:crypto";
import { lstatSync, mkdirSync, readdirSync, renameSync, rmSync, type Stats, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { NrtError } from "../errors.js";
import { fsyncDir, writeFileAtomic } from "../io/atomic.js";
import { writeError } from "../io/write-error.js";
import { acquireRunLock, LOCK_FILE, type RunLock } from "./run-lock.js";

/** Files of a run directory (SPEC §6) besides checkpoints/ and final/. Not config.json: that name marks a model directory. */
export const RUN_CONFIG = "run_config.json";
export const METRICS_FILE = "metrics.jsonl";
export const ALARMS_FILE = "alarms.jsonl";
/** a few sampled traces with their rewards every `samples_every` steps: {step, question, trace, reference, reward} */
export const SAMPLES_FILE = "samples.jsonl";

/** `.NAME.tmp-<pid>-<hex>`: a file nrt was writing atomically when it was killed (io/atomic.ts) */
const TEMP = /^\..+\.tmp-(\d+)-[0-9a-f]+$/;

/** What nrt writes at the top of a run directory; a link in place of one of them is refused. */
const RUN_ENTRIES = [RUN_CONFIG, METRICS_FILE, ALARMS_FILE, SAMPLES_FILE, "checkpoints", "final"];

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    if (code === "ENOTDIR") throw new NrtError(`cannot be created: ${fileAncestor(path)} is a file`, path);
    throw writeError(e, path);
  }
}

/** The nearest existing ancestor of `path` that is not a directory (for "--out under a file"). */
function fileAncestor(path: string): string {
  for (let d = dirname(resolve(path)); d !== dirname(d); d = dirname(d)) {
    try {
      if (!statSync(d).isDirectory()) return d;
    } catch {
      // not there (yet): look further up
    }
  }
  return dirname(path);
}

/**
 * Refuses `out` as the directory of a new run unless it does not exist (its parent may be created) or is an
 * empty directory: an existing run is named as such, anything else by what it holds.
 */
export function checkNewRunDir(out: string): void {
  const st = lstatOrNull(out);
  if (st === null) {
    const anc = fileAncestor(out);
    const ast = lstatOrNull(anc);
    if (ast && !ast.isDirectory()) throw new NrtError(`cannot be created: ${anc} is a file`, out);
    return;
  }
  if (st.isSymbolicLink())
    throw new NrtError("is a symbolic link: give the run directory itself (nrt does not write through links)", out);
  if (!st.isDirectory()) throw new NrtError("exists and is not a directory", out);
  const entries = readdirSync(out)
    .filter((e) => !TEMP.test(e))
    .sort();
  if (entries.includes(RUN_CONFIG) || entries.includes(METRICS_FILE))
    throw new NrtError("already holds a run (use --resume to continue it, or another --out)", out);
  if (entries.length > 0) {
    const shown = entries.slice(0, 5).join(", ") + (entries.length > 5 ? `, … (${entries.length} entries)` : "");
    throw new NrtError(
      `is not empty (it holds ${shown}): a new run needs a new or empty directory, so that nothing of yours is overwritten`,
      out,
    );
  }
}

/**
 * Checks `dir` for `--resume`: a run directory nrt wrote, with its settings, and no symbolic link where nrt
 * writes. A run stopped before its settings were written (nothing to resume) is told as such.
 */
export function checkResumable(dir: string): void {
  const st = lstatOrNull(dir);
  if (st === null) {
    const started = leftovers(dir).length > 0;
    throw new NrtError(
      started
        ? "does not exist: a run started there was stopped before its settings were written, so there is nothing to resume; start it again with --out"
        : "does not exist",
      dir,
    );
  }
  if (!st.isDirectory()) throw new NrtError("is not a run directory (not a directory)", dir);
  const entries = readdirSync(dir);
  if (!entries.includes(RUN_CONFIG)) {
    const onlyOurs = entries.every((e) => e === LOCK_FILE || TEMP.test(e));
    throw new NrtError(
      onlyOurs
        ? `holds no ${RUN_CONFIG}, so there is nothing to resume (a run stopped before its settings were written, or none started); start the run anew with --out`
        : `is not a run directory (no ${RUN_CONFIG})`,
      dir,
    );
  }
  for (const e of RUN_ENTRIES)
    if (lstatOrNull(join(dir, e))?.isSymbolicLink())
      throw new NrtError("is a symbolic link: nrt writes a run directory only through its own files", join(dir, e));
}

/** `RUN.tmp-<pid>-<hex>` siblings of `dir`: run directories whose creation a kill interrupted. */
function leftovers(dir: string): string[] {
  const parent = dirname(resolve(dir));
  const prefix = `${basename(resolve(dir))}.tmp-`;
  try {
    return readdirSync(parent)
      .filter((e) => e.startsWith(prefix) && /^\d+-[0-9a-f]+$/.test(e.slice(prefix.length)))
      .map((e) => join(parent, e));
  } catch {
    return [];
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Creates the run directory `out` holding `files` and this process's lock, all at once: they are written into
 * `out.tmp-<pid>-<hex>`, which is then renamed to `out` (which must not exist, or be an empty directory). Leftovers
 * of creations a kill interrupted (their process gone) are removed first. Returns the lock.
 */
export function createRunDir(out: string, files: Readonly<Record<string, string>>): RunLock {
  checkNewRunDir(out);
  const target = resolve(out);
  try {
    mkdirSync(dirname(target), { recursive: true });
  } catch (e) {
    throw writeError(e, out);
  }
  for (const l of leftovers(target)) {
    const pid = Number(basename(l).split(".tmp-")[1].split("-")[0]);
    if (!pidAlive(pid)) rmSync(l, { recursive: true, force: true });
  }
  for (const e of lstatOrNull(target) ? readdirSync(target) : []) {
    const pid = TEMP.exec(e)?.[1];
    if (pid !== undefined && !pidAlive(Number(pid))) rmSync(join(target, e), { force: true }); // else rename fails
  }
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  let lock: RunLock | undefined;
  try {
    mkdirSync(tmp);
    for (const [name, text] of Object.entries(files)) writeFileAtomic(join(tmp, name), text);
    lock = acquireRunLock(tmp, out);
    renameSync(tmp, target);
    lock.moved(target);
    fsyncDir(dirname(target));
  } catch (e) {
    lock?.release();
    rmSync(tmp, { recursive: true, force: true });
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOTEMPTY" || code === "EEXIST")
      throw new NrtError("was filled by another process while this run started (another nrt train?)", out);
    throw writeError(e, out);
  }
  return lock;
}
