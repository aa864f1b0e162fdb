/**
 * The globals `@huggingface/jinja` gives a template (its `setupGlobals`), with a bounded `range`: a template that
 * asks for a huge range gets an error naming the limit instead of growing until the process runs out of memory.
 */
import { NrtError } from "../errors.js";

/** the most elements `range()` makes in one call */
export const MAX_RANGE = 1_000_000;

function range(start: number, stop?: number, step = 1): number[] {
  let [a, b] = stop === undefined ? [0, start] : [start, stop];
  if (step === 0) throw new Error("range() step must not be zero");
  if (!Number.isFinite(a) || !Number.isFinite(b)) throw new Error("range() needs finite numbers");
  a = Math.trunc(a);
  b = Math.trunc(b);
  const n = Math.max(0, Math.ceil((b - a) / step));
  if (n > MAX_RANGE) throw new NrtError(`range() of ${n} elements is more than nrt allows (${MAX_RANGE})`);
  return Array.from({ length: n }, (_, i) => a + i * step);
}

const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** jinja's strftime_now: %Y %m %d %b %B %H %M %% of the current local time */
function strftimeNow(format: string): string {
  const d = new Date();
  return format.replace(/%[YmdbBHM%]/g, (t) => {
    switch (t) {
      case "%Y":
        return String(d.getFullYear());
      case "%m":
        return pad2(d.getMonth() + 1);
      case "%d":
        return pad2(d.getDate());
      case "%b":
        return new Intl.DateTimeFormat(undefined, { month: "short" }).format(d);
      case "%B":
        return new Intl.DateTimeFormat(undefined, { month: "long" }).format(d);
      case "%H":
        return pad2(d.getHours());
      case "%M":
        return pad2(d.getMinutes());
      default:
        return "%";
    }
  });
}

/** The template globals, by name. */
export const JINJA_GLOBALS: Readonly<Record<string, unknown>> = {
  false: false,
  true: true,
  none: null,
  raise_exception: (msg: unknown) => {
    throw new Error(String(msg));
  },
  range,
  strftime_now: strftimeNow,
  True: true,
  False: false,
  None: null,
};
