/**
 * llama2.c's `tokenizer.bin` (e.g. `tok512.bin`, written by llama2.c's tokenizer.py from a SentencePiece model):
 *
 *   int32 max_token_length, then for each of the model's vocab_size tokens: float32 score, int32 len, len bytes
 *
 * Ids 0, 1, 2 are ⟨unk⟩, ⟨bos⟩ ("\n<s>\n"), ⟨eos⟩ ("\n</s>\n"); ids 3..258 are the byte tokens <0x00>..<0xFF>;
 * SentencePiece's ▁ is written as a plain space. run.c encodes by prepending a space, splitting into code points
 * (unknown ones into byte tokens), then repeatedly merging the adjacent pair whose concatenation is the vocabulary
 * entry with the highest score. A Hugging Face BPE reproduces that when its merges are ranked by those scores:
 * every way (a, b) of splitting an entry into two entries is a merge, and the merges go in order of the entry's
 * score (ties, which SentencePiece BPE vocabularies do not have, would go by id).
 */
import { NrtError } from "../errors.js";
import type { AddedTokenJson, TokenizerJson } from "../tokenizer/tokenizer-json.js";

/** A llama2.c tokenizer: one piece (UTF-8 text, spaces as written in the file) and score per id. */
export interface Llama2cVocab {
  maxTokenLength: number;
  pieces: string[];
  scores: Float32Array;
}

const SPECIALS = ["<unk>", "<s>", "</s>"] as const;
/** how llama2.c's tokenizer.py writes the three specials */
const FILE_SPECIALS = ["<unk>", "\n<s>\n", "\n</s>\n"];
/** the SentencePiece meta symbol for a space */
export const SPIECE_SPACE = "▁";

/** Reads `vocabSize` entries (the model header's vocab size: the file does not store it) and checks the layout. */
export function readLlama2cVocab(bytes: Uint8Array, vocabSize: number, where: string): Llama2cVocab {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  const need = (at: number, n: number, what: string) => {
    if (at + n > bytes.length) throw new NrtError(`file ends inside ${what} (at byte ${at})`, where);
  };
  need(0, 4, "max_token_length");
  const maxTokenLength = dv.getInt32(0, true);
  const pieces: string[] = [];
  const scores = new Float32Array(vocabSize);
  let at = 4;
  for (let id = 0; id < vocabSize; id++) {
    need(at, 8, `the entry of token ${id}`);
    scores[id] = dv.getFloat32(at, true);
    const len = dv.getInt32(at + 4, true);
    at += 8;
    if (len < 0 || len > maxTokenLength + 6) throw new NrtError(`token ${id} has length ${len}`, where);
    need(at, len, `the bytes of token ${id}`);
    try {
      pieces.push(utf8.decode(bytes.subarray(at, at + len)));
    } catch {
      throw new NrtError(`token ${id} is not valid UTF-8`, where);
    }
    at += len;
  }
  if (at !== bytes.length) {
    throw new NrtError(`${bytes.length - at} bytes left after ${vocabSize} tokens (the model's vocab_size)`, where);
  }
  FILE_SPECIALS.forEach((s, id) => {
    if (pieces[id] !== s)
      throw new NrtError(`token ${id} is ${JSON.stringify(pieces[id])}, expected ${JSON.stringify(s)}`, where);
  });
  for (let b = 0; b < 256; b++) {
    if (pieces[3 + b] !== byteToken(b)) {
      throw new NrtError(`token ${3 + b} is ${JSON.stringify(pieces[3 + b])}, expected ${byteToken(b)}`, where);
    }
  }
  return { maxTokenLength, pieces, scores };
}

/** `<0x0A>`-style name of a byte token, as SentencePiece and llama2.c write it. */
export function byteToken(b: number): string {
  return `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
}

/**
 * A Llama-2-style Hugging Face `tokenizer.json` equivalent to run.c's encoder and decoder: BPE with byte fallback
 * over the same ids, ▁ for spaces (prepended once, as SentencePiece's dummy prefix), merges ranked by score,
 * ⟨unk⟩ ⟨s⟩ ⟨/s⟩ as special added tokens, and the decoder that turns ▁ back into spaces and drops the leading one.
 */
export function llama2cTokenizerJson(v: Llama2cVocab, where = "tokenizer"): TokenizerJson {
  const tokens = v.pieces.map((p, id) => (id < SPECIALS.length ? SPECIALS[id] : p.replaceAll(" ", SPIECE_SPACE)));
  const vocab: Record<string, number> = {};
  tokens.forEach((t, id) => {
    if (Object.hasOwn(vocab, t))
      throw new NrtError(`token ${id} ${JSON.stringify(t)} repeats token ${vocab[t]}`, where);
    vocab[t] = id;
  });
  // ids that may be merge operands or results: not the specials, not the byte tokens
  const mergeable = (id: number | undefined): id is number => id !== undefined && id >= 3 + 256;
  const merges: { a: string; b: string; score: number; id: number; ia: number; ib: number }[] = [];
  tokens.forEach((t, id) => {
    if (!mergeable(id)) return;
    const chars = Array.from(t);
    for (let k = 1; k < chars.length; k++) {
      const a = chars.slice(0, k).join("");
      const b = chars.slice(k).join("");
      const ia = vocab[a];
      const ib = vocab[b];
      if (mergeable(ia) && mergeable(ib)) merges.push({ a, b, score: v.scores[id], id, ia, ib });
    }
  });
  merges.sort((x, y) => y.score - x.score || x.id - y.id || x.ia - y.ia || x.ib - y.ib);
  const added: AddedTokenJson[] = SPECIALS.map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: {
      type: "Sequence",
      normalizers: [
        { type: "Prepend", prepend: SPIECE_SPACE },
        { type: "Replace", pattern: { String: " " }, content: SPIECE_SPACE },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: "<s>", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "<s>", type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: SPIECE_SPACE }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<unk>",
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: merges.map((m) => [m.a, m.b] as [string, string]),
    },
  };
}
