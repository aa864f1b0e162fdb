import { NrtError } from "../errors.js";

/** The reasoning worlds of SPEC §7. */
export type WorldName = "chain" | "chain2" | "chainlong";

/** Every world, in the order help texts list them. */
export const WORLDS: readonly WorldName[] = ["chain", "chain2", "chainlong"];

/** True when `name` is one of {@link WORLDS}. */
export function isWorld(name: string): name is WorldName {
  return (WORLDS as readonly string[]).includes(name);
}

/**
 * The four phrasings of a `chainlong` answer sentence (SPEC §7), by index: `v is n.` · `v = n.` ·
 * `the value of v is n.` · `v equals n.`
 */
export const PHRASINGS: readonly ((v: string, n: number) => string)[] = [
  (v, n) => `${v} is ${n}.`,
  (v, n) => `${v} = ${n}.`,
  (v, n) => `the value of ${v} is ${n}.`,
  (v, n) => `${v} equals ${n}.`,
];

/** The variable names, in order: `a` holds d0, each later one applies one affine step mod 10. */
export const VARIABLES = "abcdefghij";

/** Most variables a question can have (a..j). */
export const MAX_K = VARIABLES.length;

/** One step `,<v><op><x>`: v = (previous value op x) mod 10. */
export interface ChainStep {
  name: string;
  op: "+" | "*";
  x: number;
}

/**
 * A question taken apart: `a<d0>`, the steps, and the queried variable names (one for chain, two for chain2, every
 * variable after `a` in reverse order for chainlong).
 */
export interface ParsedQuestion {
  world: WorldName;
  d0: number;
  steps: ChainStep[];
  queried: string[];
}

/** A question's reference answer and step-by-step trace; `values[i]` is the value of `VARIABLES[i]`. */
export interface Solution {
  world: WorldName;
  /** number of variables, k = steps + 1 */
  k: number;
  answer: string;
  trace: string;
  values: number[];
  /** the queried (variable, value) pairs in the query's order */
  pairs: [string, number][];
}

/** Question text: `a<d0>`, then `,<v><op><x>` for each step, then `;` and the queried names joined by `,`. */
export function formatQuestion(q: ParsedQuestion): string {
  const steps = q.steps.map((s) => `,${s.name}${s.op}${s.x}`).join("");
  return `a${q.d0}${steps};${q.queried.join(",")}`;
}

function bad(question: string, reason: string): NrtError {
  return new NrtError(`not a chain/chain2/chainlong question (${reason}): ${JSON.stringify(question)}`);
}

/** Parse and check a question against SPEC §7's format; throws NrtError naming what is wrong. */
export function parseQuestion(question: string): ParsedQuestion {
  const parts = question.split(";");
  if (parts.length !== 2) throw bad(question, "expected exactly one ';'");
  const items = parts[0].split(",");
  const head = /^a([0-9])$/.exec(items[0]);
  if (!head) throw bad(question, `first item must be 'a' and one digit, got ${JSON.stringify(items[0])}`);
  if (items.length < 2) throw bad(question, "a question has at least one step (k >= 2)");
  if (items.length > MAX_K) throw bad(question, `at most ${MAX_K} variables (a..j)`);
  const steps: ChainStep[] = [];
  for (let i = 1; i < items.length; i++) {
    const m = /^([a-j])([+*])([0-9])$/.exec(items[i]);
    if (!m) throw bad(question, `step ${i} must be '<v><op><digit>', got ${JSON.stringify(items[i])}`);
    const [, name, op, digit] = m;
    if (name !== VARIABLES[i]) throw bad(question, `step ${i} must define '${VARIABLES[i]}', got '${name}'`);
    const x = Number(digit);
    if (op === "+" && x < 1) throw bad(question, `'+' takes x in 1-9, got ${x}`);
    if (op === "*" && x < 2) throw bad(question, `'*' takes x in 2-9, got ${x}`);
    steps.push({ name, op: op as "+" | "*", x });
  }
  const last = VARIABLES[steps.length];
  const queried = parts[1].split(",");
  if (queried.length > 1 && queried[0] === last && queried[queried.length - 1] !== last) {
    const reverse = reversedVariables(steps.length + 1);
    if (queried.join(",") !== reverse.join(",")) {
      throw bad(question, `a chainlong query lists every variable after 'a' in reverse order: ${reverse.join(",")}`);
    }
    return { world: "chainlong", d0: Number(head[1]), steps, queried };
  }
  if (queried[queried.length - 1] !== last) throw bad(question, `the last queried variable must be '${last}'`);
  if (queried.length === 1) return { world: "chain", d0: Number(head[1]), steps, queried };
  if (queried.length !== 2) throw bad(question, "one (chain) or two (chain2) queried variables");
  const early = VARIABLES.indexOf(queried[0]);
  if (queried[0].length !== 1 || early < 1 || early >= steps.length) {
    throw bad(question, `the early queried variable must be one of b..${VARIABLES[steps.length - 1]}`);
  }
  return { world: "chain2", d0: Number(head[1]), steps, queried };
}

/** The chainlong query of a k-variable question: every variable after `a`, last first (`d,c,b` for k = 4). */
export function reversedVariables(k: number): string[] {
  return [...VARIABLES.slice(1, k)].reverse();
}

/**
 * A chainlong answer (SPEC §7): one sentence per (variable, value) pair in order, sentence i in phrasing
 * `phrasings[i]` (an index into {@link PHRASINGS}), joined by one space.
 */
export function phraseAnswer(pairs: readonly (readonly [string, number])[], phrasings: readonly number[]): string {
  return pairs.map(([v, n], i) => PHRASINGS[phrasings[i]](v, n)).join(" ");
}

/**
 * Solve a parsed question: v_i = (v_{i-1} op x) mod 10; trace steps `<v>=<prev><op><x>=<value>` joined by one space.
 * A chainlong answer uses `phrasings` (one index per queried variable; phrasing 0, `v is n.`, where not given).
 */
export function solveParsed(q: ParsedQuestion, phrasings: readonly number[] = []): Solution {
  const values = [q.d0];
  const trace: string[] = [];
  for (const s of q.steps) {
    const prev = values[values.length - 1];
    const value = (s.op === "+" ? prev + s.x : prev * s.x) % 10;
    values.push(value);
    trace.push(`${s.name}=${prev}${s.op}${s.x}=${value}`);
  }
  const pairs = q.queried.map((v): [string, number] => [v, values[VARIABLES.indexOf(v)]]);
  const answer =
    q.world === "chainlong"
      ? phraseAnswer(
          pairs,
          pairs.map((_, i) => phrasings[i] ?? 0),
        )
      : pairs.map(([v, n]) => `${v}=${n}`).join(",");
  return { world: q.world, k: values.length, answer, trace: trace.join(" "), values, pairs };
}

/**
 * The reference answer and trace of a `chain`/`chain2`/`chainlong` question (SPEC §7), e.g.
 * `a7,b+4,c*6,d+2;d` → answer `d=8`, trace `b=7+4=1 c=1*6=6 d=6+2=8`. Throws NrtError on a malformed question.
 */
export function solve(question: string): Solution {
  return solveParsed(parseQuestion(question));
}
