// tokenizer.json → tokenizer.ggml.* for the shapes real Llama-family tokenizers ship (hand-built, no downloads).
import { describe, expect, it } from "vitest";
import type { GgufValue } from "../../src/export/gguf.js";
import { ggufVocab, TOKEN_TYPE } from "../../src/export/gguf-vocab.js";
import { checkTokenizerJson } from "../../src/tokenizer/tokenizer-json.js";
import { gpt2Json, llama2Json, llama3Json } from "../tokenizer/hand-built.js";

const ids = { bos: 1, eos: 2 };
const get = (kv: [string, GgufValue][], key: string) => kv.find(([k]) => k === key)?.[1].value;

describe("ggufVocab", () => {
  it("GPT-2 byte-level BPE → gpt2 with its merges, pre-tokenizer gpt-2, <|endoftext|> as a control token", () => {
    const json = checkTokenizerJson(gpt2Json(), "gpt2");
    const n = Object.keys(json.model.vocab).length;
    const v = ggufVocab(json, n + 2, { bos: null, eos: n - 1 }, "gpt2");
    expect(v.model).toBe("gpt2");
    expect(get(v.kv, "tokenizer.ggml.pre")).toBe("gpt-2");
    expect(get(v.kv, "tokenizer.ggml.merges")).toEqual(["h e", "l l", "he ll", "hell o", "Ġ t", "Ġt he", "Ġ w"]);
    const tokens = get(v.kv, "tokenizer.ggml.tokens") as string[];
    const types = get(v.kv, "tokenizer.ggml.token_type") as number[];
    expect([tokens[32], tokens[65]]).toEqual(["Ġ", "A"]); // the byte-level symbols, as they are
    expect(tokens.slice(n - 1)).toEqual(["<|endoftext|>", `[PAD${n}]`, `[PAD${n + 1}]`]); // padded to the model's rows
    expect(types.slice(n - 2)).toEqual([TOKEN_TYPE.normal, TOKEN_TYPE.control, TOKEN_TYPE.unused, TOKEN_TYPE.unused]);
    expect(get(v.kv, "tokenizer.ggml.add_bos_token")).toBe(false);
    expect(get(v.kv, "tokenizer.ggml.bos_token_id")).toBeUndefined();
  });

  it("Llama-3 split pattern → pre-tokenizer llama-bpe", () => {
    const json = checkTokenizerJson(llama3Json(), "llama3");
    const v = ggufVocab(json, 256 + 7 + 3, ids, "llama3");
    expect(v.model).toBe("gpt2");
    expect(get(v.kv, "tokenizer.ggml.pre")).toBe("llama-bpe");
  });

  it("Llama-2 SentencePiece-style BPE → llama with scores −(merge rank), byte and unknown token types", () => {
    const json = checkTokenizerJson(llama2Json(), "llama2");
    const vocab = json.model.vocab as Record<string, number>;
    const n = Object.keys(vocab).length;
    const v = ggufVocab(json, n, ids, "llama2");
    expect(v.model).toBe("llama");
    expect(get(v.kv, "tokenizer.ggml.merges")).toBeUndefined();
    const scores = get(v.kv, "tokenizer.ggml.scores") as number[];
    // merges: ▁ t, h e, ▁t he, ▁ a
    expect([scores[vocab["▁t"]], scores[vocab.he], scores[vocab["▁the"]], scores[vocab["▁a"]]]).toEqual([
      -0, -1, -2, -3,
    ]);
    expect(scores[vocab.a]).toBe(0);
    const types = get(v.kv, "tokenizer.ggml.token_type") as number[];
    expect(types.slice(0, 5)).toEqual([
      TOKEN_TYPE.unknown,
      TOKEN_TYPE.control,
      TOKEN_TYPE.control,
      TOKEN_TYPE.byte,
      TOKEN_TYPE.byte,
    ]);
    expect(types[vocab["▁the"]]).toBe(TOKEN_TYPE.normal);
    expect(get(v.kv, "tokenizer.ggml.add_space_prefix")).toBe(true);
    expect(get(v.kv, "tokenizer.ggml.unknown_token_id")).toBe(0);
  });

  it("refuses a non-BPE tokenizer and ids beyond the model's vocab size", () => {
    const wordLevel = checkTokenizerJson({ model: { type: "WordLevel", vocab: { a: 0 } } }, "wl");
    expect(() => ggufVocab(wordLevel, 1, ids, "wl")).toThrow(/handles BPE tokenizers; this one is "WordLevel"/);
    const json = checkTokenizerJson(llama2Json(), "llama2");
    expect(() => ggufVocab(json, 10, ids, "llama2")).toThrow(/outside the model's vocab_size 10/);
  });
});
