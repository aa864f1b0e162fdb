import { type AddedTokenJson, ANSWER_START, type TokenizerJson } from "./tokenizer-json.js";

/** SPEC §7 special tokens, ids 0..3: ⟨pad⟩ ⟨bos⟩ ⟨eos⟩ ⟨answer_start⟩. */
export const CHAR_SPECIALS = ["<pad>", "<s>", "</s>", ANSWER_START] as const;

/** SPEC §7 characters, ids 4..29 in this order: `0–9 a–j + * = , ;` and space. */
export const CHAR_ALPHABET = "0123456789abcdefghij+*=,; ";

/** The characters `chainlong` adds after chain's (SPEC §7), ids 30..46: the letters `k–z` and `.`. */
export const CHAR_ALPHABET_LONG_EXTRA = "klmnopqrstuvwxyz.";

/** The character alphabet of a world: chain's for chain and chain2, chain's then the extra ones for chainlong. */
export function charAlphabet(world: "chain" | "chain2" | "chainlong" = "chain"): string {
  return world === "chainlong" ? CHAR_ALPHABET + CHAR_ALPHABET_LONG_EXTRA : CHAR_ALPHABET;
}

/** Size of a world's char vocabulary: the four specials and its alphabet (30, or 47 for chainlong). */
export function charVocabSize(world: "chain" | "chain2" | "chainlong" = "chain"): number {
  return CHAR_SPECIALS.length + charAlphabet(world).length;
}

/** Ids of the SPEC §7 char vocabulary. */
export const CHAR_IDS = { pad: 0, bos: 1, eos: 2, answerStart: 3 } as const;

/** Size of the SPEC §7 char vocabulary (4 specials + 26 characters = 30). */
export const CHAR_VOCAB_SIZE = CHAR_SPECIALS.length + CHAR_ALPHABET.length;

/**
 * The SPEC §7 character-level `tokenizer.json`: a BPE model with no merges (so every character is its own token)
 * over the 30-id vocabulary (47 for chainlong, whose ids 0..29 are chain's), no normalizer, no pre-tokenizer (spaces are ordinary tokens), a `Fuse` decoder (tokens
 * concatenated, so decoding gives the exact text back), no post-processor (⟨bos⟩ is added by the caller), and the
 * four specials as added tokens with `special: true`. The specials are also in the model vocab at ids 0..3 so that
 * the Rust `tokenizers` library, which re-derives added-token ids from the model, keeps them there.
 */
export function charTokenizerJson(world: "chain" | "chain2" | "chainlong" = "chain"): TokenizerJson {
  const vocab: Record<string, number> = {};
  const added: AddedTokenJson[] = [];
  CHAR_SPECIALS.forEach((content, id) => {
    vocab[content] = id;
    added.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  });
  for (const ch of charAlphabet(world)) vocab[ch] = Object.keys(vocab).length;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: "Fuse" },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}
