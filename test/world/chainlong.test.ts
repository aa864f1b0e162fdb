import { describe, expect, it } from "vitest";
import { charTokenizerJson } from "../../src/tokenizer/char-tokenizer-json.js";
import { Tokenizer } from "../../src/tokenizer/tokenizer.js";
import {
  generate,
  longAnswerCorrect,
  parseLongAnswer,
  parseQuestion,
  solve,
  type WorldRecord,
} from "../../src/world/chain.js";
import { fnv1a32 } from "../../src/world/fnv.js";

const VARS = "abcdefghij";

/** SPEC §7's chainlong question for k variables, written out independently: chain's steps, the query reversed. */
function questionRegex(k: number): RegExp {
  let body = "^a[0-9]";
  for (let i = 1; i < k; i++) body += `,${VARS[i]}(?:\\+[1-9]|\\*[2-9])`;
  const query = [...VARS.slice(1, k)].reverse().join(",");
  return new RegExp(`${body};${query}$`);
}

/** The four SPEC §7 sentence forms, each with its (variable, value) captured. */
const FORMS: RegExp[] = [
  /^([a-j]) is ([0-9])\.$/,
  /^([a-j]) = ([0-9])\.$/,
  /^the value of ([a-j]) is ([0-9])\.$/,
  /^([a-j]) equals ([0-9])\.$/,
];

/** Split a reference into its sentences (each ends with "." and they are joined by one space). */
function sentences(answer: string): string[] {
  return answer.split(/(?<=\.) /);
}

/** Independent values of every variable of a question. */
function values(question: string): Map<string, number> {
  const items = question.split(";")[0].split(",");
  let prev = Number(items[0][1]);
  const vals = new Map<string, number>([["a", prev]]);
  for (const item of items.slice(1)) {
    const x = Number(item[2]);
    prev = item[1] === "+" ? (prev + x) % 10 : (prev * x) % 10;
    vals.set(item[0], prev);
  }
  return vals;
}

const gen = (split: "train" | "eval", n: number, k: number | [number, number], seed = 1): WorldRecord[] =>
  generate({ world: "chainlong", split, n, k, seed, withTrace: true });

describe("chainlong generator (SPEC §7)", () => {
  it("writes chain questions whose query lists every variable after a in reverse order, answered in order", () => {
    for (let k = 3; k <= 10; k++) {
      for (const split of ["train", "eval"] as const) {
        for (const r of gen(split, 100, k, k)) {
          expect(r.question).toMatch(questionRegex(k));
          expect(r.k).toBe(k);
          const vals = values(r.question);
          const ss = sentences(r.answer);
          expect(ss).toHaveLength(k - 1);
          expect(ss.join(" ")).toBe(r.answer);
          ss.forEach((s, i) => {
            const form = FORMS.find((f) => f.test(s));
            expect(form, s).toBeDefined();
            const [, v, n] = form!.exec(s)!;
            expect(v).toBe(VARS[k - 1 - i]);
            expect(Number(n)).toBe(vals.get(v));
          });
          expect(r.trace).toBe(solve(r.question).trace);
        }
      }
    }
  });

  it("uses each of the four phrasings, uniformly and independently per sentence", () => {
    const counts = [0, 0, 0, 0];
    const pairs = new Map<string, number>();
    let n = 0;
    for (const r of gen("train", 3000, [3, 6], 9)) {
      const forms = sentences(r.answer).map((s) => FORMS.findIndex((f) => f.test(s)));
      for (const f of forms) counts[f]++;
      n += forms.length;
      const key = `${forms[0]}${forms[1]}`;
      pairs.set(key, (pairs.get(key) ?? 0) + 1);
    }
    for (const c of counts) expect(Math.abs(c / n - 0.25)).toBeLessThan(0.02);
    // independence: all 16 combinations of the first two sentences' phrasings, each near 1/16
    expect(pairs.size).toBe(16);
    for (const c of pairs.values()) expect(Math.abs(c / 3000 - 1 / 16)).toBeLessThan(0.02);
  });

  it("draws the reference per record: one question appears with different phrasings", () => {
    const byQ = new Map<string, Set<string>>();
    for (const r of gen("train", 4000, 3, 4)) byQ.set(r.question, (byQ.get(r.question) ?? new Set()).add(r.answer));
    expect([...byQ.values()].some((s) => s.size > 1)).toBe(true);
  });

  it("keeps the held-out split: no reserved question in train, only reserved ones in eval", () => {
    expect(gen("train", 3000, [3, 6], 7).every((r) => fnv1a32(r.question) % 10 !== 0)).toBe(true);
    expect(gen("eval", 1500, [3, 6], 7).every((r) => fnv1a32(r.question) % 10 === 0)).toBe(true);
  });

  it("is deterministic for a seed and refuses k < 3", () => {
    expect(gen("train", 200, [3, 8], 5)).toEqual(gen("train", 200, [3, 8], 5));
    expect(gen("train", 200, [3, 8], 6)).not.toEqual(gen("train", 200, [3, 8], 5));
    expect(() => gen("train", 1, 2)).toThrow(/chainlong takes k in 3-10/);
  });

  it("parses its questions as chainlong and refuses a query out of order", () => {
    expect(parseQuestion("a7,b+4,c*6,d+2;d,c,b").world).toBe("chainlong");
    expect(parseQuestion("a7,b+4,c*6;c,b").world).toBe("chainlong");
    expect(parseQuestion("a7,b+4,c*6;b,c").world).toBe("chain2");
    expect(solve("a7,b+4,c*6,d+2;d,c,b").answer).toBe("d is 8. c is 6. b is 1.");
    expect(() => parseQuestion("a7,b+4,c*6,d+2;d,b,c")).toThrow(/reverse order: d,c,b/);
    expect(() => parseQuestion("a7,b+4,c*6,d+2;d,c")).toThrow(/reverse order/);
  });

  it("is encoded by the chainlong char tokenizer, which keeps chain's ids", () => {
    const long = charTokenizerJson("chainlong");
    const short = charTokenizerJson("chain");
    expect(Object.keys(long.model.vocab)).toHaveLength(47);
    for (const [t, id] of Object.entries(short.model.vocab)) expect(long.model.vocab[t]).toBe(id);
    const tok = Tokenizer.fromJson(JSON.stringify(long), "chainlong");
    for (const r of gen("train", 200, [3, 10], 3)) {
      const text = `${r.question}${r.trace} ${r.answer}`;
      expect(tok.decode(tok.encode(text))).toBe(text);
      expect(tok.encode(text)).toHaveLength(text.length);
    }
  });
});

describe("chainlong answer parser", () => {
  it("accepts every phrasing and any mix of them", () => {
    expect(parseLongAnswer("d is 8.")).toEqual([["d", 8]]);
    expect(parseLongAnswer("d = 8.")).toEqual([["d", 8]]);
    expect(parseLongAnswer("the value of d is 8.")).toEqual([["d", 8]]);
    expect(parseLongAnswer("d equals 8.")).toEqual([["d", 8]]);
    expect(parseLongAnswer("d = 8. the value of c is 6. b is 1.")).toEqual([
      ["d", 8],
      ["c", 6],
      ["b", 1],
    ]);
    expect(parseLongAnswer("c equals 0. b = 9.")).toEqual([
      ["c", 0],
      ["b", 9],
    ]);
  });

  it.each([
    ["", "empty"],
    ["d is 8", "no full stop"],
    ["d is 8. ", "trailing space"],
    [" d is 8.", "leading space"],
    ["d is 8.  c is 6.", "two spaces"],
    ["d is 8.c is 6.", "no space"],
    ["d is 18.", "two digits"],
    ["d is x.", "not a digit"],
    ["D is 8.", "capital"],
    ["d=8.", "no spaces around ="],
    ["d == 8.", "another wording"],
    ["the value of d = 8.", "mixed wording"],
    ["value of d is 8.", "cut wording"],
    ["d is 8. and c is 6.", "a stray word"],
    ["k is 8.", "not a variable"],
    ["d is 8..", "double full stop"],
  ])("rejects %j (%s)", (text) => {
    expect(parseLongAnswer(text)).toBeNull();
  });

  it("counts an answer correct when its pairs equal the reference's in order, whatever the phrasing", () => {
    const ref = "d = 8. the value of c is 6. b is 1.";
    expect(longAnswerCorrect("d is 8. c is 6. b is 1.", ref)).toBe(true);
    expect(longAnswerCorrect("d equals 8. c = 6. the value of b is 1.", ref)).toBe(true);
    expect(longAnswerCorrect(ref, ref)).toBe(true);
    expect(longAnswerCorrect("d is 8. b is 1. c is 6.", ref)).toBe(false);
    expect(longAnswerCorrect("d is 8. c is 6. b is 2.", ref)).toBe(false);
    expect(longAnswerCorrect("d is 8. c is 6.", ref)).toBe(false);
    expect(longAnswerCorrect("d is 8. c is 6. b is 1. a is 7.", ref)).toBe(false);
    expect(longAnswerCorrect("d is 8. c is 6. b is 1", ref)).toBe(false);
  });
});
