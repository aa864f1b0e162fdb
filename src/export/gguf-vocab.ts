/**
 * A Hugging Face BPE `tokenizer.json` as GGUF `tokenizer.ggml.*` metadata, in one of llama.cpp's two BPE forms:
 *
 * - "llama" (SentencePiece style: ▁ for spaces, byte-fallback tokens <0x00>..<0xFF>; Llama 2, llama2.c): tokens
 *   as they are, with scores. llama.cpp merges the adjacent pair whose concatenation has the highest score, so a
 *   token made by merge number r (in merges order) gets score −r; tokens no merge makes get 0.
 * - "gpt2" (byte-level BPE: GPT-2, Llama 3): tokens and merges as they are ("a b" strings).
 * - A plain BPE over characters (nrt's SPEC §7 char tokenizer) is written as "gpt2" too, after mapping each
 *   token's UTF-8 bytes through GPT-2's bytes_to_unicode (so a space becomes Ġ), which is how llama.cpp's
 *   gpt2 tokenizer spells byte strings. llama.cpp pre-splits gpt2 text with a regex before merging; with no
 *   merges (the char tokenizer) that changes nothing, otherwise merges across those splits are lost (warned).
 *
 * Token types are llama.cpp's: 1 normal, 2 unknown (the model's unk_token), 3 control (special added tokens), 4 user-defined (other
 * added tokens), 5 unused (padding up to the model's vocab size, named [PAD<id>]), 6 byte.
 */
import { NrtError } from "../errors.js";
import type { TokenizerJson } from "../tokenizer/tokenizer-json.js";
import { type GgufValue, gv } from "./gguf.js";

export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/** The Llama-3 pre-tokenizer pattern, which llama.cpp calls "llama-bpe". */
const LLAMA3_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** Qwen2's pattern (Llama 3's with single digits), which llama.cpp calls "qwen2". */
const QWEN2_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export interface GgufVocab {
  model: "llama" | "gpt2";
  kv: [string, GgufValue][];
  warnings: string[];
}

/** Special ids come from the model's config.json (they win over the tokenizer's guesses). */
export interface SpecialIds {
  bos: number | null;
  eos: number | null;
}

/** `tokenizer.ggml.*` key/values for `json`, padded with unused tokens up to `vocabSize` rows. */
export function ggufVocab(json: TokenizerJson, vocabSize: number, ids: SpecialIds, where: string): GgufVocab {
  const m = json.model;
  if ((m.type ?? "BPE") !== "BPE") {
    throw new NrtError(`GGUF export handles BPE tokenizers; this one is ${JSON.stringify(m.type)}`, where);
  }
  const tokens: (string | undefined)[] = Array.from({ length: vocabSize }, () => undefined); // no holes: map visits all
  const put = (t: string, id: number) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new NrtError(`token ${JSON.stringify(t)} has id ${id}, outside the model's vocab_size ${vocabSize}`, where);
    }
    tokens[id] = t;
  };
  const entries: [string, number][] = Array.isArray(m.vocab)
    ? m.vocab.map(([t], id) => [t, id])
    : Object.entries(m.vocab);
  for (const [t, id] of entries) put(t, id);
  const added = new Map(json.added_tokens.map((t) => [t.id, t]));
  for (const t of json.added_tokens) put(t.content, t.id);
  const merges = (m.merges ?? []).map((x) => (typeof x === "string" ? x.split(" ") : x) as [string, string]);

  const byteLevel = mentions(json.pre_tokenizer, "ByteLevel") || mentions(json.decoder, "ByteLevel");
  const spm = !byteLevel && (m.byte_fallback === true || mentions(json, "Metaspace") || mentions(json.normalizer, "▁"));
  const kind = spm ? "llama" : "gpt2";
  const warnings: string[] = [];
  const idOf = new Map<string, number>();
  tokens.forEach((t, id) => {
    if (t !== undefined) idOf.set(t, id);
  });
  const unk = typeof m.unk_token === "string" ? idOf.get(m.unk_token) : undefined;

  let names: string[];
  let mergeStrings: string[] = [];
  if (kind === "gpt2" && !byteLevel) {
    const b2u = bytesToUnicode();
    const map = (s: string) => Array.from(Buffer.from(s, "utf8"), (b) => b2u[b]).join("");
    names = tokens.map((t, id) => (t === undefined ? `[PAD${id}]` : added.has(id) ? t : map(t)));
    mergeStrings = merges.map(([a, b]) => `${map(a)} ${map(b)}`);
    if (merges.length > 0) warnings.push("llama.cpp pre-splits text before merging: merges across its splits are lost");
  } else {
    names = tokens.map((t, id) => t ?? `[PAD${id}]`);
    mergeStrings = merges.map(([a, b]) => `${a} ${b}`);
  }
  const types = tokens.map((t, id) => {
    if (t === undefined) return TOKEN_TYPE.unused;
    if (id === unk) return TOKEN_TYPE.unknown;
    const a = added.get(id);
    if (a) return a.special ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined;
    if (kind === "llama" && /^<0x[0-9A-Fa-f]{2}>$/.test(t)) return TOKEN_TYPE.byte;
    return TOKEN_TYPE.normal;
  });

  const kv: [string, GgufValue][] = [
    ["tokenizer.ggml.model", gv.str(kind)],
    ["tokenizer.ggml.pre", gv.str(kind === "llama" ? "default" : preName(json))],
    ["tokenizer.ggml.tokens", gv.arr("str", names)],
    ["tokenizer.ggml.token_type", gv.arr("i32", types)],
  ];
  if (kind === "llama") {
    const scores = new Float32Array(vocabSize);
    const seen = new Set<number>();
    merges.forEach(([a, b], r) => {
      const id = idOf.get(a + b);
      if (id !== undefined && !seen.has(id)) {
        seen.add(id);
        scores[id] = -r;
      }
    });
    kv.push(["tokenizer.ggml.scores", gv.arr("f32", Array.from(scores))]);
    kv.push(["tokenizer.ggml.add_space_prefix", gv.bool(addsSpacePrefix(json))]);
  } else {
    kv.push(["tokenizer.ggml.merges", gv.arr("str", mergeStrings)]);
  }
  if (ids.bos !== null) kv.push(["tokenizer.ggml.bos_token_id", gv.u32(ids.bos)]);
  if (ids.eos !== null) kv.push(["tokenizer.ggml.eos_token_id", gv.u32(ids.eos)]);
  if (unk !== undefined) kv.push(["tokenizer.ggml.unknown_token_id", gv.u32(unk)]);
  const pad = json.added_tokens.find((t) => t.special && (t.content === "<pad>" || t.content === "[PAD]"));
  if (pad) kv.push(["tokenizer.ggml.padding_token_id", gv.u32(pad.id)]);
  kv.push(["tokenizer.ggml.add_bos_token", gv.bool(ids.bos !== null)]);
  kv.push(["tokenizer.ggml.add_eos_token", gv.bool(false)]);
  return { model: kind, kv, warnings };
}

/** true when `x` (any JSON) contains the string `s` as a value anywhere */
function mentions(x: unknown, s: string): boolean {
  if (typeof x === "string") return x === s;
  if (Array.isArray(x)) return x.some((y) => mentions(y, s));
  if (x && typeof x === "object") return Object.values(x).some((y) => mentions(y, s));
  return false;
}

/** SentencePiece's dummy prefix: a Prepend ▁ normalizer, or a Metaspace that prepends */
function addsSpacePrefix(json: TokenizerJson): boolean {
  if (mentions(json.normalizer, "Prepend")) return true;
  const meta = findType(json.pre_tokenizer, "Metaspace");
  if (!meta) return false;
  return meta.prepend_scheme !== undefined ? meta.prepend_scheme !== "never" : meta.add_prefix_space !== false;
}

function findType(x: unknown, type: string): Record<string, unknown> | null {
  if (Array.isArray(x)) {
    for (const y of x) {
      const r = findType(y, type);
      if (r) return r;
    }
  } else if (x && typeof x === "object") {
    const o = x as Record<string, unknown>;
    if (o.type === type) return o;
    for (const y of Object.values(o)) {
      const r = findType(y, type);
      if (r) return r;
    }
  }
  return null;
}

/** llama.cpp's name for the pre-tokenizer: Llama 3's or Qwen2's split pattern, GPT-2's regex, or its default. */
function preName(json: TokenizerJson): string {
  if (mentions(json.pre_tokenizer, LLAMA3_PATTERN)) return "llama-bpe";
  if (mentions(json.pre_tokenizer, QWEN2_PATTERN)) return "qwen2";
  const bl = findType(json.pre_tokenizer, "ByteLevel");
  if (bl && bl.use_regex !== false) return "gpt-2";
  return "default";
}

/** GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others for U+0100 onwards. */
export function bytesToUnicode(): string[] {
  const keep = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCharCode(keep(b) ? b : 256 + n++));
  return out;
}
