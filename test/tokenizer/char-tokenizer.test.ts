import { describe, expect, it } from "vitest";
import { NrtError } from "../../src/errors.js";
import {
  CHAR_ALPHABET,
  CHAR_IDS,
  CHAR_SPECIALS,
  CHAR_VOCAB_SIZE,
  charTokenizerJson,
} from "../../src/tokenizer/char-tokenizer-json.js";
import { Tokenizer } from "../../src/tokenizer/tokenizer.js";
import { generate } from "../../src/world/chain.js";

const tok = Tokenizer.fromJson(JSON.stringify(charTokenizerJson()), "char");

describe("char tokenizer.json (SPEC §7)", () => {
  it("has the 30 ids in the SPEC order", () => {
    expect(CHAR_VOCAB_SIZE).toBe(30);
    expect(tok.vocabSize).toBe(30);
    const order = ["<pad>", "<s>", "</s>", "<answer_start>", ..."0123456789abcdefghij+*=,; "];
    expect([...CHAR_SPECIALS, ...CHAR_ALPHABET]).toEqual(order);
    order.forEach((t, id) => {
      expect(tok.tokenToId(t)).toBe(id);
      expect(tok.idToToken(id)).toBe(t);
    });
    expect(tok.specialIds).toEqual(new Set([0, 1, 2, 3]));
    expect([tok.bosId, tok.eosId, tok.answerStartId]).toEqual([CHAR_IDS.bos, CHAR_IDS.eos, CHAR_IDS.answerStart]);
    expect(charTokenizerJson().added_tokens.every((t) => t.special)).toBe(true);
  });

  it("maps each character to one id", () => {
    for (const [i, c] of [...CHAR_ALPHABET].entries()) expect(tok.encode(c)).toEqual([4 + i]);
    expect(tok.encode("  ")).toEqual([29, 29]);
    expect(tok.encode(" a7 ")).toEqual([29, 14, 11, 29]);
    expect(tok.encode("")).toEqual([]);
  });

  it("round-trips every generated question, trace and answer exactly", () => {
    for (const world of ["chain", "chain2"] as const) {
      for (const split of ["train", "eval"] as const) {
        const recs = generate({ world, split, n: 400, k: [world === "chain" ? 2 : 3, 10], seed: 9, withTrace: true });
        for (const r of recs) {
          for (const s of [r.question, r.trace ?? "", r.answer, `${r.question} ${r.trace} ${r.answer}`]) {
            const ids = tok.encode(s);
            expect(ids).toHaveLength(s.length);
            expect(ids).toEqual([...s].map((c) => 4 + CHAR_ALPHABET.indexOf(c)));
            expect(tok.decode(ids)).toBe(s);
          }
        }
      }
    }
  });

  it("decodes a full SPEC §2 sequence, keeping specials unless asked", () => {
    const q = "a7,b+4,c*6,d+2;d";
    const ids = [1, ...tok.encode(q), ...tok.encode("b=7+4=1 c=1*6=6 d=6+2=8"), 3, ...tok.encode("d=8"), 2, 0];
    expect(tok.decode(ids)).toBe(`<s>${q}b=7+4=1 c=1*6=6 d=6+2=8<answer_start>d=8</s><pad>`);
    expect(tok.decode(ids, { skipSpecial: true })).toBe(`${q}b=7+4=1 c=1*6=6 d=6+2=8d=8`);
    expect(tok.encode("<s>a7<answer_start>")).toEqual([1, 14, 11, 3]);
  });

  it("refuses characters outside the vocabulary and ids out of range", () => {
    expect(() => tok.encode("a7,B+4;b")).toThrow(NrtError);
    expect(() => tok.encode("a7,B+4;b")).toThrow('["B"]');
    expect(() => tok.encode("k")).toThrow(NrtError);
    expect(() => tok.decode([30])).toThrow(NrtError);
    expect(() => tok.decode([-1])).toThrow(NrtError);
    expect(() => tok.decode([1.5])).toThrow(NrtError);
    expect(tok.decode([])).toBe("");
  });

  it("already has <answer_start>: addAnswerStart changes nothing", () => {
    const { json, id } = tok.addAnswerStart();
    expect(id).toBe(3);
    expect(json).toEqual(charTokenizerJson());
    expect(tok.toJson()).toEqual(charTokenizerJson());
  });
});
