import { NrtError } from "../errors.js";

/** An integer flag value ≥ min, or an error naming the flag. */
export function parseIntArg(v: unknown, flag: string, min = 1): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min)
    throw new NrtError(`must be an integer ≥ ${min}, got ${JSON.stringify(v)}`, flag);
  return n;
}

/** A finite number flag value that passes `ok` (described by `what`), or an error naming the flag; NaN is refused. */
export function parseNumArg(v: unknown, flag: string, ok: (x: number) => boolean, what: string): number {
  const x = typeof v === "string" && v.trim() === "" ? Number.NaN : Number(v);
  if (!Number.isFinite(x) || !ok(x)) throw new NrtError(`must be ${what}, got ${JSON.stringify(v)}`, flag);
  return x;
}

/** "3-6" → [3, 6]; "4" → [4, 4]. */
export function parseKRange(v: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(v.trim());
  if (!m) throw new NrtError(`must be a number or a range like 3-6, got ${JSON.stringify(v)}`, "--k");
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo > hi) throw new NrtError(`range ${v} is empty`, "--k");
  return [lo, hi];
}
