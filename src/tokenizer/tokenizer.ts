import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { NrtError } from "../errors.js";
import { type AddedTokenJson, ANSWER_START, checkTokenizerJson, type TokenizerJson } from "./tokenizer-json.js";

/** Overrides for the ids the tokenizer cannot know by itself (e.g. from `config.json`'s `bos/eos_token_id`). */
export interface TokenizerOptions {
  bosId?: number | null;
  eosId?: number | null;
}

/** Options of {@link Tokenizer.decode}. */
export interface DecodeOptions {
  /** drop every added token with `special: true` (default false: nothing is skipped) */
  skipSpecial?: boolean;
}

/** Contents taken as ⟨bos⟩ / ⟨eos⟩ when no id is given, in order of preference (SPEC §7, Llama 2/3, Gemma, GPT-2). */
const BOS_NAMES = ["<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>", "<|endoftext|>"];
const EOS_NAMES = ["</s>", "<|end_of_text|>", "<eos>", "<|endoftext|>"];

/**
 * Any Hugging Face `tokenizer.json` (the SPEC §7 char tokenizer or a real BPE), over `@huggingface/tokenizers`.
 * `encode` never adds special tokens; `decode` never cleans up spaces, so char-level text comes back exactly.
 */
export class Tokenizer {
  /** ids of every added token with `special: true` */
  readonly specialIds: ReadonlySet<number>;
  /** largest id + 1, over the model vocab and the added tokens */
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  /** id of `<answer_start>` (SPEC §2), or null when the vocabulary lacks it */
  readonly answerStartId: number | null;
  private readonly hf: HfTokenizer;
  private readonly json: TokenizerJson;
  /** true when the encoded tokens concatenate to the input unless a character was dropped as unknown */
  private readonly checkDrops: boolean;
  /** the source of this tokenizer (its file), named in errors */
  readonly where: string;
  /** the contents of the special added tokens, longest first */
  private readonly specialTexts: string[];

  private constructor(json: TokenizerJson, where: string, options: TokenizerOptions) {
    this.json = json;
    this.where = where;
    try {
      this.hf = new HfTokenizer(json, {});
    } catch (e) {
      throw new NrtError(`cannot load tokenizer: ${(e as Error).message}`, where);
    }
    const model = this.hf.model;
    if (!model) throw new NrtError("tokenizer has no model", where);
    let size = model.vocab.length;
    for (const t of json.added_tokens) size = Math.max(size, t.id + 1);
    this.vocabSize = size;
    this.specialIds = new Set(json.added_tokens.filter((t) => t.special).map((t) => t.id));
    this.specialTexts = json.added_tokens
      .filter((t) => t.special && t.content.length > 0)
      .map((t) => t.content)
      .sort((a, b) => b.length - a.length);
    const special = (names: string[]): number | null => {
      for (const name of names) {
        const t = json.added_tokens.find((a) => a.content === name && a.special);
        if (t) return t.id;
      }
      return null;
    };
    this.bosId = options.bosId !== undefined ? options.bosId : special(BOS_NAMES);
    this.eosId = options.eosId !== undefined ? options.eosId : special(EOS_NAMES);
    this.answerStartId = special([ANSWER_START]);
    const m = json.model;
    this.checkDrops =
      m.type === "BPE" &&
      (m.unk_token ?? null) === null &&
      !m.byte_fallback &&
      json.normalizer === null &&
      json.pre_tokenizer === null &&
      !m.continuing_subword_suffix &&
      !m.end_of_word_suffix;
  }

  /** A tokenizer from a parsed or raw `tokenizer.json`; `where` names its source in errors. */
  static fromJson(json: object | string, where = "tokenizer.json", options: TokenizerOptions = {}): Tokenizer {
    return new Tokenizer(checkTokenizerJson(json, where), where, options);
  }

  /** A tokenizer read from a `tokenizer.json` file, or from a model directory holding one. */
  static async fromFile(path: string, options: TokenizerOptions = {}): Promise<Tokenizer> {
    let file = path;
    let text: string;
    try {
      if ((await stat(path)).isDirectory()) file = join(path, "tokenizer.json");
      text = await readFile(file, "utf8");
    } catch (e) {
      throw new NrtError(`cannot read tokenizer: ${(e as Error).message}`, file);
    }
    return Tokenizer.fromJson(text, file, options);
  }

  /** Token ids of `text`, with no special tokens added (added-token strings inside `text` do match). */
  encode(text: string): number[] {
    if (text.length === 0) return [];
    // typed here: the package's .d.ts use extensionless imports that NodeNext resolution cannot follow
    let enc: { ids: (number | undefined)[]; tokens: string[] };
    try {
      enc = this.hf.encode(text, { add_special_tokens: false });
    } catch (e) {
      throw new NrtError(`cannot encode ${excerpt(text)} with ${this.describe()}: ${(e as Error).message}`);
    }
    if (enc.ids.some((id) => id === undefined || id < 0)) {
      const bad = enc.tokens.filter((_, i) => enc.ids[i] === undefined || (enc.ids[i] as number) < 0);
      throw new NrtError(
        `cannot encode ${excerpt(text)} with ${this.describe()}: the token(s) ${JSON.stringify(bad.slice(0, 5))} have no id in its vocabulary (and no usable unk_token)`,
      );
    }
    if (this.checkDrops && enc.tokens.join("") !== text) {
      const unknown = [...new Set(text)].filter((c) => this.hf.token_to_id(c) === undefined);
      throw new NrtError(
        `cannot encode ${excerpt(text)} with ${this.describe()}: not in the vocabulary: ${JSON.stringify(unknown)}`,
      );
    }
    return enc.ids as number[];
  }

  /** "TOKENIZER_FILE (a WordPiece tokenizer)": what errors name. */
  describe(): string {
    return `${this.where} (a ${this.json.model.type ?? "untyped"} tokenizer)`;
  }

  /** The first special token's text (e.g. `<answer_start>`, `</s>`) that `text` holds, or null. */
  specialTextIn(text: string): string | null {
    for (const t of this.specialTexts) if (text.includes(t)) return t;
    return null;
  }

  /** The text of `ids`; nothing is skipped unless `skipSpecial`, no spaces are cleaned up. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.hf.id_to_token(id) === undefined) {
        throw new NrtError(`cannot decode token id ${id}: not in the vocabulary (size ${this.vocabSize})`);
      }
    }
    const kept = options.skipSpecial ? ids.filter((id) => !this.specialIds.has(id)) : ids;
    if (kept.length === 0) return "";
    return this.hf.decode([...kept], { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  /** Id of a token string (model vocab or added token), or null. */
  tokenToId(token: string): number | null {
    return this.hf.token_to_id(token) ?? null;
  }

  /** Token string of an id, or null. */
  idToToken(id: number): string | null {
    return this.hf.id_to_token(id) ?? null;
  }

  /** A deep copy of the `tokenizer.json` this tokenizer was built from. */
  toJson(): TokenizerJson {
    return structuredClone(this.json);
  }

  /**
   * SPEC §2: a `tokenizer.json` that has `<answer_start>` as an added special token, appended after the existing
   * ids (id = vocabSize) when missing; unchanged (a copy) when present. Returns the JSON and the token's id.
   */
  addAnswerStart(): { json: TokenizerJson; id: number } {
    const json = this.toJson();
    if (this.answerStartId !== null) return { json, id: this.answerStartId };
    if (this.tokenToId(ANSWER_START) !== null) {
      throw new NrtError(`'${ANSWER_START}' is in the vocabulary but not as a special added token`);
    }
    const id = this.vocabSize;
    const token: AddedTokenJson = {
      id,
      content: ANSWER_START,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    };
    json.added_tokens.push(token);
    return { json, id };
  }
}

/** A text as errors quote it: JSON, cut to 60 characters. */
function excerpt(text: string): string {
  return text.length > 60 ? `${JSON.stringify(text.slice(0, 60))}…` : JSON.stringify(text);
}
