import { describe, expect, it } from "vitest";
import { NrtError } from "../../src/errors.js";
import { generate, type SplitName, toJsonl, type WorldName, type WorldRecord } from "../../src/world/chain.js";
import { fnv1a32 } from "../../src/world/fnv.js";

const VARS = "abcdefghij";

/** The SPEC §7 question format for k variables, written out independently of the generator. */
function questionRegex(world: WorldName, k: number): RegExp {
  let body = "^a[0-9]";
  for (let i = 1; i < k; i++) body += `,${VARS[i]}(?:\\+[1-9]|\\*[2-9])`;
  const last = VARS[k - 1];
  const query = world === "chain" ? last : `[b-${VARS[k - 2]}],${last}`;
  return new RegExp(`${body};${query}$`);
}

/** Independent re-computation of answer and trace from the question text. */
function recompute(question: string): { answer: string; trace: string; k: number } {
  const [left, right] = question.split(";");
  const items = left.split(",");
  const vals = new Map<string, number>([["a", Number(items[0][1])]]);
  const trace: string[] = [];
  let prev = Number(items[0][1]);
  for (const item of items.slice(1)) {
    const x = Number(item[2]);
    const v = item[1] === "+" ? (prev + x) % 10 : (prev * x) % 10;
    trace.push(`${item[0]}=${prev}${item[1]}${x}=${v}`);
    vals.set(item[0], v);
    prev = v;
  }
  const answer = right
    .split(",")
    .map((n) => `${n}=${vals.get(n)}`)
    .join(",");
  return { answer, trace: trace.join(" "), k: items.length };
}

function gen(world: WorldName, split: SplitName, n: number, k: [number, number], seed = 1): WorldRecord[] {
  return generate({ world, split, n, k, seed, withTrace: true });
}

describe.each(["chain", "chain2"] as const)("generate %s", (world) => {
  const lo = world === "chain" ? 2 : 3;

  it("follows the SPEC §7 format and values for every k", () => {
    for (let k = lo; k <= 10; k++) {
      for (const split of ["train", "eval"] as const) {
        for (const r of gen(world, split, 150, [k, k], k)) {
          expect(r.question).toMatch(questionRegex(world, k));
          expect(r.k).toBe(k);
          const ref = recompute(r.question);
          expect(r.answer).toBe(ref.answer);
          expect(r.trace).toBe(ref.trace);
          expect(r.trace).toMatch(/^[b-j]=[0-9][+*][0-9]=[0-9]( [b-j]=[0-9][+*][0-9]=[0-9])*$/);
          expect(r.answer).toMatch(world === "chain" ? /^[b-j]=[0-9]$/ : /^[b-i]=[0-9],[c-j]=[0-9]$/);
        }
      }
    }
  });

  it("never puts a reserved question in train and only reserved ones in eval", () => {
    const train = gen(world, "train", 5000, [lo, 6], 7);
    expect(train.every((r) => fnv1a32(r.question) % 10 !== 0)).toBe(true);
    const evalSet = gen(world, "eval", 2000, [lo, 6], 7);
    expect(evalSet.every((r) => fnv1a32(r.question) % 10 === 0)).toBe(true);
  });

  it("draws k uniformly within the range, and d0, op, x over their full ranges", () => {
    const recs = gen(world, "train", 6000, [lo, 6], 3);
    const ks = new Map<number, number>();
    const d0 = new Set<string>();
    const plus = new Set<string>();
    const times = new Set<string>();
    let nPlus = 0;
    let nSteps = 0;
    for (const r of recs) {
      ks.set(r.k, (ks.get(r.k) ?? 0) + 1);
      d0.add(r.question[1]);
      for (const m of r.question.matchAll(/([+*])([0-9])/g)) {
        (m[1] === "+" ? plus : times).add(m[2]);
        nSteps++;
        if (m[1] === "+") nPlus++;
      }
    }
    expect([...ks.keys()].sort()).toEqual(Array.from({ length: 7 - lo }, (_, i) => lo + i));
    for (const c of ks.values()) expect(Math.abs(c / recs.length - 1 / (7 - lo))).toBeLessThan(0.03);
    expect(d0.size).toBe(10);
    expect([...plus].sort().join("")).toBe("123456789");
    expect([...times].sort().join("")).toBe("23456789");
    expect(Math.abs(nPlus / nSteps - 0.5)).toBeLessThan(0.03);
  });

  it("is deterministic for a seed and differs across seeds", () => {
    const a = gen(world, "train", 300, [lo, 8], 42);
    expect(gen(world, "train", 300, [lo, 8], 42)).toEqual(a);
    expect(gen(world, "train", 300, [lo, 8], 43)).not.toEqual(a);
  });

  it("refuses k outside the world's range", () => {
    expect(() => gen(world, "train", 1, [lo - 1, 4])).toThrow(NrtError);
    expect(() => gen(world, "train", 1, [lo, 11])).toThrow(NrtError);
    expect(() => gen(world, "train", 1, [5, 4])).toThrow(NrtError);
  });
});

describe("chain2 early variable", () => {
  it("is uniform over b .. the variable before the last", () => {
    const counts = new Map<string, number>();
    const recs = gen("chain2", "train", 4000, [6, 6], 5);
    for (const r of recs) {
      const early = r.question.split(";")[1].split(",")[0];
      counts.set(early, (counts.get(early) ?? 0) + 1);
    }
    expect([...counts.keys()].sort().join("")).toBe("bcde");
    for (const c of counts.values()) expect(Math.abs(c / recs.length - 0.25)).toBeLessThan(0.03);
    for (const r of gen("chain2", "train", 200, [3, 3], 6)) expect(r.question.endsWith(";b,c")).toBe(true);
  });
});

describe("toJsonl", () => {
  it("writes question and answer, and trace only when asked", () => {
    const without = generate({ world: "chain", split: "train", n: 5, k: [3, 4], seed: 1 });
    const text = toJsonl(without);
    expect(text.endsWith("\n")).toBe(true);
    const lines = text.trimEnd().split("\n");
    expect(lines).toHaveLength(5);
    lines.forEach((l, i) => {
      expect(Object.keys(JSON.parse(l))).toEqual(["question", "answer"]);
      expect(JSON.parse(l)).toEqual({ question: without[i].question, answer: without[i].answer });
    });
    const withTrace = generate({ world: "chain2", split: "eval", n: 5, k: 4, seed: 1, withTrace: true });
    for (const [i, l] of toJsonl(withTrace).trimEnd().split("\n").entries()) {
      expect(JSON.parse(l)).toEqual({
        question: withTrace[i].question,
        answer: withTrace[i].answer,
        trace: withTrace[i].trace,
      });
    }
    expect(toJsonl([])).toBe("");
  });
});
