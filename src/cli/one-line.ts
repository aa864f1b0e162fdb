import { NrtError } from "../errors.js";
import { isOsError, osErrorLine } from "../io/write-error.js";

const OUT_OF_MEMORY = /bad_alloc|Array buffer allocation failed|Invalid (typed )?array length|Invalid string length/;

/**
 * The one-line error a failure reaches the user as: nrt's own errors as they are, an OS error naming its path and
 * what went wrong (ENOSPC, EISDIR, …), the native engine's messages and allocation failures named as such. null for
 * anything else (a bug: the caller prints its stack).
 */
export function oneLineError(e: unknown): NrtError | null {
  if (e instanceof NrtError) return e;
  if (isOsError(e)) return osErrorLine(e);
  const msg = e instanceof Error ? e.message : "";
  if (OUT_OF_MEMORY.test(msg))
    return new NrtError(`out of memory (${msg}): the batch or model is too large for this machine`, "native engine");
  if (msg.startsWith("nrt native: ")) return new NrtError(msg.slice("nrt native: ".length), "native engine");
  return null;
}
