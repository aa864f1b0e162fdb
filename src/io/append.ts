import { closeSync, constants, openSync, writeSync } from "node:fs";
import { NrtError } from "../errors.js";
import { writeError } from "./write-error.js";

/**
 * Appends `text` to `path` (created if missing) without following a symbolic link: a link in its place is an
 * error, so a run directory's logs never write to a file outside it.
 */
export function appendNoFollow(path: string, text: string): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ELOOP")
      throw new NrtError("is a symbolic link: nrt does not write through links", path);
    throw writeError(e, path);
  }
  try {
    const b = Buffer.from(text, "utf8");
    for (let off = 0; off < b.length; ) off += writeSync(fd, b, off, b.length - off);
  } catch (e) {
    throw writeError(e, path);
  } finally {
    closeSync(fd);
  }
}
