/** Small tokenizer.json files built by hand for tests, in the shapes real models ship (no downloads). */

const BASE = { version: "1.0", truncation: null, padding: null };

function added(id: number, content: string, special = true) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: !special, special };
}

/** GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onwards. */
export function bytesToUnicode(): string[] {
  const keep = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCharCode(keep(b) ? b : 256 + n++));
  return out;
}

function bpeModel(vocab: Record<string, number>, merges: string[][] | string[], extra: object = {}) {
  return {
    type: "BPE",
    dropout: null,
    unk_token: null,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: false,
    byte_fallback: false,
    ignore_merges: false,
    vocab,
    merges,
    ...extra,
  };
}

/** Vocab = the 256 byte symbols, then the results of `merges` in order. */
function byteVocab(merges: string[][]): Record<string, number> {
  const vocab: Record<string, number> = {};
  for (const c of bytesToUnicode()) vocab[c] = Object.keys(vocab).length;
  for (const [a, b] of merges) vocab[a + b] = Object.keys(vocab).length;
  return vocab;
}

/** Ġ is the byte-level symbol of a space. */
export const BYTE_MERGES = [
  ["h", "e"],
  ["l", "l"],
  ["he", "ll"],
  ["hell", "o"],
  ["Ġ", "t"],
  ["Ġt", "he"],
  ["Ġ", "w"],
];

/** GPT-2 style: ByteLevel pre-tokenizer (with its regex), ByteLevel decoder, `<|endoftext|>` after the vocab. */
export function gpt2Json() {
  const vocab = byteVocab(BYTE_MERGES);
  const eot = Object.keys(vocab).length;
  vocab["<|endoftext|>"] = eot;
  return {
    ...BASE,
    added_tokens: [added(eot, "<|endoftext|>")],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: bpeModel(vocab, BYTE_MERGES),
  };
}

/** Llama-3's pre-tokenizer split pattern. */
const LLAMA3_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * Llama-3 style: Split + ByteLevel pre-tokenizer, ByteLevel decoder, a TemplateProcessing post-processor that
 * prepends `<|begin_of_text|>`, ignore_merges, and specials after the model vocab (not in it).
 */
export function llama3Json() {
  const vocab = byteVocab(BYTE_MERGES);
  const n = Object.keys(vocab).length;
  const bos = { id: "<|begin_of_text|>", ids: [n], tokens: ["<|begin_of_text|>"] };
  return {
    ...BASE,
    added_tokens: [added(n, "<|begin_of_text|>"), added(n + 1, "<|end_of_text|>"), added(n + 2, "<|eot_id|>")],
    normalizer: null,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: LLAMA3_PATTERN }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { "<|begin_of_text|>": bos },
    },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: bpeModel(vocab, BYTE_MERGES, { ignore_merges: true }),
  };
}

/**
 * Llama-2 (SentencePiece-converted) style: normalizer prepends ▁ and maps spaces to ▁, BPE with byte fallback
 * over a few characters, decoder ▁→space + ByteFallback + Fuse + strip one leading space.
 */
export function llama2Json() {
  const vocab: Record<string, number> = { "<unk>": 0, "<s>": 1, "</s>": 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`] = 3 + b;
  const merges = [
    ["▁", "t"],
    ["h", "e"],
    ["▁t", "he"],
    ["▁", "a"],
  ];
  for (const c of "▁abcdefghijklmnopqrstuvwxyz0123456789,;+*=.") vocab[c] = Object.keys(vocab).length;
  for (const [a, b] of merges) vocab[a + b] = Object.keys(vocab).length;
  return {
    ...BASE,
    added_tokens: [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")],
    normalizer: {
      type: "Sequence",
      normalizers: [
        { type: "Prepend", prepend: "▁" },
        { type: "Replace", pattern: { String: " " }, content: "▁" },
      ],
    },
    pre_tokenizer: null,
    post_processor: null,
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "▁" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    // the older "a b" string form of merges, as in many Llama-2 era files
    model: bpeModel(
      vocab,
      merges.map((m) => m.join(" ")),
      { unk_token: "<unk>", byte_fallback: true, fuse_unk: true },
    ),
  };
}
