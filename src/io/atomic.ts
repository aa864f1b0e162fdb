import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, lstatSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { NrtError } from "../errors.js";
import { writeError } from "./write-error.js";

/** File contents: UTF-8 text, bytes, or a list of byte chunks written one after the other. */
export type FileData = string | Uint8Array | readonly Uint8Array[];

/**
 * Writes `path` so that readers see either the old file or the whole new one, never a part: the data goes to a
 * temporary name in the same directory, is fsynced, renamed over `path`, and the directory is fsynced.
 */
export function writeFileAtomic(path: string, data: FileData): void {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${uniqueSuffix()}`);
  try {
    writeAndSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw writeError(e, path);
  }
  fsyncDir(dirname(path));
}

/**
 * Writes the directory `dir` holding exactly `files` (relative names; `a/b.json` creates `a/`) so that it is
 * never seen half-written: everything goes into `dir.tmp-<pid>-<rand>`, is fsynced, and that directory is renamed
 * to `dir`. An existing `dir` is first renamed aside to `dir.old-<pid>-<rand>` and deleted afterwards; if the
 * process dies between those two renames, `dir` is missing and both complete copies are still on disk.
 * On failure nothing is left behind and an existing `dir` is untouched.
 */
export function writeDirAtomic(dir: string, files: Readonly<Record<string, FileData>>): void {
  const target = resolve(dir);
  const names = Object.keys(files);
  for (const name of names) checkRelativeName(name, target);
  const existing = statOrNull(target);
  if (existing && !existing.isDirectory()) throw new NrtError("exists and is not a directory", target);
  mkdirSync(dirname(target), { recursive: true });

  const tmp = `${target}.tmp-${uniqueSuffix()}`;
  mkdirSync(tmp);
  try {
    const dirs = new Set<string>([tmp]);
    for (const name of names) {
      const path = join(tmp, name);
      for (let d = dirname(path); d !== tmp && !dirs.has(d); d = dirname(d)) dirs.add(d);
      mkdirSync(dirname(path), { recursive: true });
      writeAndSync(path, files[name]);
    }
    // deepest first, so that each directory's entries are durable before its parent's
    for (const d of [...dirs].sort((a, b) => b.length - a.length)) fsyncDir(d);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw writeError(e, target);
  }

  let old: string | undefined;
  try {
    if (existing) {
      old = `${target}.old-${uniqueSuffix()}`;
      renameSync(target, old);
    }
    renameSync(tmp, target);
  } catch (e) {
    if (old) renameSync(old, target);
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  fsyncDir(dirname(target));
  if (old) rmSync(old, { recursive: true, force: true });
}

function uniqueSuffix(): string {
  return `${process.pid}-${randomBytes(4).toString("hex")}`;
}

/** A name inside the directory: relative, no empty, `.` or `..` segments. */
function checkRelativeName(name: string, dir: string): void {
  const parts = name.split(/[\\/]/);
  if (name.includes("\0") || parts.some((p) => p === "" || p === "." || p === "..")) {
    throw new NrtError(`file name ${JSON.stringify(name)} is not a plain relative path inside the directory`, dir);
  }
}

function statOrNull(path: string): ReturnType<typeof lstatSync> | null {
  try {
    return lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

function writeAndSync(path: string, data: FileData): void {
  const chunks = typeof data === "string" ? [Buffer.from(data, "utf8")] : data instanceof Uint8Array ? [data] : data;
  const fd = openSync(path, "wx");
  try {
    for (const chunk of chunks) {
      for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off, chunk.length - off);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** fsync a directory so that renames in it are durable; skipped where directories cannot be opened (Windows). */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, "r");
  } catch (e) {
    if (process.platform === "win32") return;
    throw e;
  }
  try {
    fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "EINVAL" && code !== "EISDIR" && code !== "EPERM") throw e;
  } finally {
    closeSync(fd);
  }
}
