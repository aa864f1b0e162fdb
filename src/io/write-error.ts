import { NrtError } from "../errors.js";

const WHY: Record<string, string> = {
  ENOSPC: "no space left on the device (ENOSPC)",
  EDQUOT: "disk quota exceeded (EDQUOT)",
  EROFS: "the file system is read-only (EROFS)",
  EACCES: "permission denied (EACCES)",
  EPERM: "operation not permitted (EPERM)",
  EISDIR: "is a directory (EISDIR)",
  ENOTDIR: "a part of the path is a file, not a directory (ENOTDIR)",
  EEXIST: "already exists (EEXIST)",
  ENAMETOOLONG: "the name is too long (ENAMETOOLONG)",
  ELOOP: "a loop of symbolic links (ELOOP)",
  EIO: "input/output error (EIO)",
  EMFILE: "too many open files (EMFILE)",
  ENOENT: "a directory on the path does not exist (ENOENT)",
};

/** An OS error from writing `path` as one line naming the path: `cannot write (no space left … (ENOSPC))`. */
export function writeError(e: unknown, path: string): NrtError {
  if (e instanceof NrtError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  return new NrtError(`cannot write (${(code && WHY[code]) ?? code ?? (e as Error).message})`, path);
}

/** The OS errors `writeError` names: anything with one of these codes is an I/O failure, not a bug. */
export const isOsError = (e: unknown): e is NodeJS.ErrnoException =>
  typeof (e as NodeJS.ErrnoException)?.code === "string" && typeof (e as NodeJS.ErrnoException)?.syscall === "string";

/** One line for an OS error that escaped: `<path>: cannot <syscall> (<why>)`. */
export function osErrorLine(e: NodeJS.ErrnoException): NrtError {
  const code = e.code ?? "";
  const where = e.path ?? (e as { dest?: string }).dest ?? e.syscall ?? "nrt";
  return new NrtError(`cannot ${e.syscall ?? "do that"} (${WHY[code] ?? code})`, where);
}
