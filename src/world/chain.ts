import { NrtError } from "../errors.js";
import { Rng } from "../util/rng.js";
import { isReserved } from "./fnv.js";
import {
  type ChainStep,
  formatQuestion,
  isWorld,
  MAX_K,
  type ParsedQuestion,
  PHRASINGS,
  reversedVariables,
  solveParsed,
  VARIABLES,
  WORLDS,
  type WorldName,
} from "./question.js";

export { fnv1a32, isReserved } from "./fnv.js";
export { LONGEST_SENTENCE, longAnswerCorrect, parseLongAnswer } from "./long-answer.js";
export {
  type ChainStep,
  formatQuestion,
  isWorld,
  MAX_K,
  type ParsedQuestion,
  PHRASINGS,
  parseQuestion,
  phraseAnswer,
  reversedVariables,
  type Solution,
  solve,
  solveParsed,
  VARIABLES,
  WORLDS,
  type WorldName,
} from "./question.js";

/** Which side of the SPEC §7 held-out split a question must fall on. */
export type SplitName = "train" | "eval";

/** One generated example; `k` is its number of variables. */
export interface WorldRecord {
  question: string;
  answer: string;
  trace?: string;
  k: number;
}

/** Options of {@link generate}. `k` is one number of variables or an inclusive range [lo, hi]. */
export interface GenerateOptions {
  world: WorldName;
  split: SplitName;
  n: number;
  k: number | readonly [number, number];
  seed: number;
  withTrace?: boolean;
}

/** Redraws allowed per record before giving up (a reserved question turns up with probability ~1/10). */
const MAX_REDRAWS = 100_000;

/**
 * Smallest k of a world: chain needs one step, chain2 an early variable strictly between `a` and the last, chainlong
 * (SPEC §7) k ≥ 3.
 */
export function minK(world: WorldName): number {
  return world === "chain" ? 2 : 3;
}

/** Check a k range against the world; returns [lo, hi]. */
export function checkKRange(world: WorldName, k: number | readonly [number, number]): [number, number] {
  const [lo, hi] = typeof k === "number" ? [k, k] : k;
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo > hi) {
    throw new NrtError(`k must be an integer or a range lo <= hi, got ${JSON.stringify(k)}`, "k");
  }
  if (lo < minK(world) || hi > MAX_K) {
    throw new NrtError(`${world} takes k in ${minK(world)}-${MAX_K} variables, got ${lo}-${hi}`, "k");
  }
  return [lo, hi];
}

/**
 * Draw one question with k variables (SPEC §7): d0 uniform in 0-9; per step the operator is `+` or `*` with
 * probability ½ each, x uniform in 1-9 for `+` and 2-9 for `*`; for chain2 the early queried variable is uniform
 * over b .. the one before the last; chainlong queries every variable after `a`, last first. Draw order: d0, then
 * (op, x) per step, then the early variable (chain2 only).
 */
export function drawQuestion(rng: Rng, world: WorldName, k: number): ParsedQuestion {
  checkKRange(world, k);
  const d0 = rng.int(0, 9);
  const steps: ChainStep[] = [];
  for (let i = 1; i < k; i++) {
    const op = rng.next() < 0.5 ? "+" : "*";
    steps.push({ name: VARIABLES[i], op, x: op === "+" ? rng.int(1, 9) : rng.int(2, 9) });
  }
  const last = VARIABLES[k - 1];
  const queried =
    world === "chain2" ? [VARIABLES[rng.int(1, k - 2)], last] : world === "chainlong" ? reversedVariables(k) : [last];
  return { world, d0, steps, queried };
}

/**
 * Draw one record of the given split: k uniform in [lo, hi], then questions are redrawn (k kept) until
 * isReserved(question) is false for `train` and true for `eval`. A chainlong record then draws its reference's
 * phrasing, one of the four uniformly and independently per sentence, in the query's order.
 */
export function drawRecord(
  rng: Rng,
  world: WorldName,
  split: SplitName,
  k: number | readonly [number, number],
  withTrace = false,
): WorldRecord {
  const [lo, hi] = checkKRange(world, k);
  const kk = rng.int(lo, hi);
  for (let attempt = 0; attempt < MAX_REDRAWS; attempt++) {
    const parsed = drawQuestion(rng, world, kk);
    const question = formatQuestion(parsed);
    if (isReserved(question) !== (split === "eval")) continue;
    const phrasings = world === "chainlong" ? parsed.queried.map(() => rng.int(0, PHRASINGS.length - 1)) : [];
    const sol = solveParsed(parsed, phrasings);
    const rec: WorldRecord = { question, answer: sol.answer, k: sol.k };
    if (withTrace) rec.trace = sol.trace;
    return rec;
  }
  throw new NrtError(`no ${split} question found for ${world} with k=${kk} after ${MAX_REDRAWS} draws`);
}

/** `n` records of a world and split from a fresh Rng(seed); the same options give the same records. */
export function generate(opts: GenerateOptions): WorldRecord[] {
  if (!Number.isInteger(opts.n) || opts.n < 0) throw new NrtError(`n must be a whole number, got ${opts.n}`, "n");
  if (!isWorld(opts.world)) {
    throw new NrtError(`unknown world ${JSON.stringify(opts.world)} (${WORLDS.join(", ")})`, "world");
  }
  if (opts.split !== "train" && opts.split !== "eval") {
    throw new NrtError(`unknown split ${JSON.stringify(opts.split)} (train or eval)`, "split");
  }
  checkKRange(opts.world, opts.k);
  const rng = new Rng(opts.seed);
  const out: WorldRecord[] = [];
  for (let i = 0; i < opts.n; i++) out.push(drawRecord(rng, opts.world, opts.split, opts.k, opts.withTrace ?? false));
  return out;
}

/** JSON Lines, one `{"question","answer"}` object a line, plus `"trace"` where the record has one; ends with "\n". */
export function toJsonl(records: readonly WorldRecord[]): string {
  return records
    .map((r) => {
      const line: { question: string; answer: string; trace?: string } = { question: r.question, answer: r.answer };
      if (r.trace !== undefined) line.trace = r.trace;
      return `${JSON.stringify(line)}\n`;
    })
    .join("");
}
