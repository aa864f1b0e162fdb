import { NrtError } from "../errors.js";

/** One entry of `added_tokens` in a Hugging Face `tokenizer.json`. */
export interface AddedTokenJson {
  id: number;
  content: string;
  single_word?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  normalized?: boolean;
  special?: boolean;
}

/** The part of a Hugging Face `tokenizer.json` model nrt reads; everything else is kept as is. */
export interface TokenizerModelJson {
  type?: string;
  vocab: Record<string, number> | Array<[string, number]>;
  merges?: string[] | Array<[string, string]>;
  unk_token?: string | null;
  byte_fallback?: boolean;
  [key: string]: unknown;
}

/** A Hugging Face `tokenizer.json` (the `tokenizers` library's serialisation). */
export interface TokenizerJson {
  version?: string;
  added_tokens: AddedTokenJson[];
  normalizer: unknown;
  pre_tokenizer: unknown;
  post_processor: unknown;
  decoder: unknown;
  model: TokenizerModelJson;
  [key: string]: unknown;
}

/** The ⟨answer_start⟩ token of SPEC §2, as written in `tokenizer.json`. */
export const ANSWER_START = "<answer_start>";

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/**
 * Parse (if a string) and check the shape of a `tokenizer.json`, returning a deep copy in which missing optional
 * sections (`added_tokens`, `normalizer`, `pre_tokenizer`, `post_processor`, `decoder`) are filled with [] or null.
 * Throws NrtError at `where` when it is not valid JSON or lacks a usable `model`/`added_tokens`.
 */
export function checkTokenizerJson(json: object | string, where: string): TokenizerJson {
  let raw: unknown;
  try {
    raw = typeof json === "string" ? JSON.parse(json) : structuredClone(json);
  } catch (e) {
    throw new NrtError(`not valid JSON: ${(e as Error).message}`, where);
  }
  if (!isObject(raw)) throw new NrtError("tokenizer.json must hold a JSON object", where);
  const model = raw.model;
  if (!isObject(model)) throw new NrtError("missing or non-object key 'model'", where);
  if (!isObject(model.vocab) && !Array.isArray(model.vocab)) {
    throw new NrtError("'model.vocab' must be an object or an array", where);
  }
  if (isObject(model.vocab)) {
    for (const [token, id] of Object.entries(model.vocab))
      if (!Number.isSafeInteger(id) || (id as number) < 0)
        throw new NrtError(
          `model.vocab[${JSON.stringify(token)}] is ${JSON.stringify(id)}: token ids must be whole numbers ≥ 0`,
          where,
        );
  }
  if (model.type === "BPE" && !Array.isArray(model.merges))
    throw new NrtError("BPE 'model.merges' must be a list", where);
  const added = raw.added_tokens ?? [];
  if (!Array.isArray(added)) throw new NrtError("'added_tokens' must be a list", where);
  added.forEach((t: unknown, i: number) => {
    if (!isObject(t) || typeof t.content !== "string" || !Number.isInteger(t.id) || (t.id as number) < 0) {
      throw new NrtError(`added_tokens[${i}] needs a string 'content' and a whole-number 'id'`, where);
    }
  });
  for (const key of ["normalizer", "pre_tokenizer", "post_processor", "decoder"]) {
    raw[key] ??= null;
    if (raw[key] !== null && !isObject(raw[key])) throw new NrtError(`'${key}' must be an object or null`, where);
  }
  raw.added_tokens = added;
  return raw as unknown as TokenizerJson;
}
