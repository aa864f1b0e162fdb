import { statSync } from "node:fs";
import { NrtError } from "../errors.js";

/** Whether `path` is a regular file; a loop of symbolic links or a denied permission is an error naming it. */
export function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ELOOP") throw new NrtError("is a loop of symbolic links (ELOOP)", path);
    if (code === "EACCES") throw new NrtError("permission denied (EACCES)", path);
    return false;
  }
}
