/**
 * Reading inputs with bounded memory. Regular files and pipes (`<(…)`, FIFOs) are read; directories, devices
 * (`/dev/zero`) and sockets are refused before a byte is read. Text files have a size limit, JSON Lines files a
 * line limit (both in {@link LIMITS}); going past one is an error naming the file (and the line).
 */
import { createHash, type Hash } from "node:crypto";
import { closeSync, fstatSync, openSync, readSync, type Stats } from "node:fs";
import { NrtError } from "../errors.js";

const MiB = 1 << 20;

/** The documented limits (README "Reliability"). */
export const LIMITS = {
  /** one line of a JSON Lines data file */
  dataLineBytes: 4 * MiB,
  /** a YAML/JSON settings file, config.json, tokenizer_config.json, a chat template */
  smallFileBytes: 16 * MiB,
  /** tokenizer.json (real ones are 2–20 MB) */
  tokenizerBytes: 256 * MiB,
  /** an `nrt grad` batch */
  batchBytes: 256 * MiB,
} as const;

const CHUNK = 1 << 16;

/** `cannot read <what> (CODE)` with the OS's code spelled out where it is not obvious. */
export function readError(e: unknown, what: string, path: string): NrtError {
  const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  const why: Record<string, string> = {
    ENOENT: "ENOENT",
    EISDIR: "EISDIR: is a directory",
    ENOTDIR: "ENOTDIR: a part of the path is not a directory",
    ELOOP: "ELOOP: a loop of symbolic links",
    EACCES: "EACCES: permission denied",
  };
  return new NrtError(`cannot read${what ? ` ${what}` : ""} (${why[code] ?? code})`, path);
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSocket()) return "a socket";
  return "not a regular file";
}

/** Opens `path` for reading: a regular file or a pipe, else an NrtError saying what it is. */
export function openInput(path: string, what: string): { fd: number; st: Stats } {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw readError(e, what, path);
  }
  const st = fstatSync(fd);
  if (!st.isFile() && !st.isFIFO()) {
    closeSync(fd);
    throw new NrtError(`cannot read${what ? ` ${what}` : ""}: ${kindOf(st)} (nrt reads regular files and pipes)`, path);
  }
  return { fd, st };
}

function readChunk(fd: number, buf: Buffer, what: string, path: string): number {
  for (;;) {
    try {
      return readSync(fd, buf, 0, buf.length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw readError(e, what, path); // EAGAIN: a non-blocking pipe
    }
  }
}

/** The bytes of `path` (a file or pipe), at most `maxBytes`: more is an error naming the limit. */
export function readBytesLimited(path: string, what: string, maxBytes: number): Buffer {
  const { fd, st } = openInput(path, what);
  try {
    if (st.isFile() && st.size > maxBytes) throw tooLarge(what, path, maxBytes);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(CHUNK);
      const n = readChunk(fd, buf, what, path);
      if (n === 0) break;
      total += n;
      if (total > maxBytes) throw tooLarge(what, path, maxBytes);
      chunks.push(buf.subarray(0, n));
    }
    return Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}

/** UTF-8 text of `path`, at most `maxBytes` (see {@link readBytesLimited}); invalid UTF-8 is an error. */
export function readTextLimited(path: string, what: string, maxBytes: number = LIMITS.smallFileBytes): string {
  const bytes = readBytesLimited(path, what, maxBytes);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new NrtError(`cannot read ${what}: invalid UTF-8`, path);
  }
}

function tooLarge(what: string, path: string, max: number): NrtError {
  return new NrtError(`cannot read${what ? ` ${what}` : ""}: larger than the limit of ${max / MiB} MiB`, path);
}

/** What {@link readLines} saw besides the lines: the byte count and SHA-256 of the whole input. */
export interface LinesDigest {
  size: number;
  sha256: string;
}

/**
 * Calls `onLine(bytes, lineNumber)` for each line of `path` (without its "\n"), reading 64 KiB at a time; a line
 * longer than `maxLineBytes` is an error at `path:N`. Returns the input's size and SHA-256.
 */
export function readLines(
  path: string,
  what: string,
  onLine: (bytes: Buffer, line: number) => void,
  maxLineBytes: number = LIMITS.dataLineBytes,
): LinesDigest {
  const { fd } = openInput(path, what);
  const hash: Hash = createHash("sha256");
  let size = 0;
  let line = 1;
  let pending: Buffer[] = [];
  let pendingLen = 0;
  const check = () => {
    if (pendingLen > maxLineBytes)
      throw new NrtError(`line is longer than the limit of ${maxLineBytes / MiB} MiB`, `${path}:${line}`);
  };
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const n = readChunk(fd, buf, what, path);
      if (n === 0) break;
      size += n;
      const chunk = buf.subarray(0, n);
      hash.update(chunk);
      let start = 0;
      for (let nl = chunk.indexOf(0x0a, start); nl >= 0; nl = chunk.indexOf(0x0a, start)) {
        pending.push(Buffer.from(chunk.subarray(start, nl)));
        pendingLen += nl - start;
        check();
        onLine(Buffer.concat(pending, pendingLen), line++);
        pending = [];
        pendingLen = 0;
        start = nl + 1;
      }
      if (start < n) {
        pending.push(Buffer.from(chunk.subarray(start)));
        pendingLen += n - start;
        check();
      }
    }
    if (pendingLen > 0) onLine(Buffer.concat(pending, pendingLen), line);
  } finally {
    closeSync(fd);
  }
  return { size, sha256: hash.digest("hex") };
}
