import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  CHAT_TEMPLATE_FILE,
  type ChatTemplate,
  readChatTemplate,
  type SpecialTokenStrings,
  TOKENIZER_CONFIG_FILE,
} from "../chat/template.js";
import { NrtError } from "../errors.js";
import type { ModelConfig } from "../model/config.js";
import { Model } from "../model/model.js";
import { Tokenizer } from "../tokenizer/tokenizer.js";
import { ANSWER_START } from "../tokenizer/tokenizer-json.js";
import { ADAPTER_CONFIG_FILE, readAdapter, readAdapterConfig, resolveBase } from "./adapter-dir.js";
import { isAdapterDir, loadModelDir, resolveModelDir } from "./model-dir.js";
import { LIMITS, readTextLimited } from "./read.js";
import type { SafetensorsDtype } from "./safetensors.js";

export const TOKENIZER_FILE = "tokenizer.json";
export const GENERATION_CONFIG_FILE = "generation_config.json";

/** A model with its tokenizer, from a model directory or a run directory (SPEC §8). */
export interface LoadedModel {
  dir: string;
  model: Model;
  tokenizer: Tokenizer;
  /** the raw tokenizer.json text, to copy into the directories nrt writes */
  tokenizerJson: string;
  /** the model's chat template (tokenizer_config.json / chat_template.jinja), or null: prompts are ⟨bos⟩ ⊕ text */
  chatTemplate: ChatTemplate | null;
  /** the directory's other tokenizer files ({@link TOKENIZER_EXTRA_FILES}) by name, raw, to copy likewise */
  tokenizerFiles?: Record<string, string>;
  /** the stored dtype of the weights (most of their elements): what outputs keep unless told otherwise */
  dtype?: SafetensorsDtype;
  /**
   * every id that ends generation: config.json's `eos_token_id` (one id or a list) and generation_config.json's,
   * e.g. Llama-3-Instruct's `<|end_of_text|>` and `<|eot_id|>`
   */
  stopIds?: number[];
}

/**
 * Files besides tokenizer.json that a model directory may hold and nrt carries over as they are: the tokenizer's
 * and template files, and generation_config.json (its eos list and sampling defaults belong to the model).
 */
export const TOKENIZER_EXTRA_FILES = [
  TOKENIZER_CONFIG_FILE,
  CHAT_TEMPLATE_FILE,
  "special_tokens_map.json",
  GENERATION_CONFIG_FILE,
] as const;

/**
 * The ids that end generation: config.json's eos ids, then generation_config.json's `eos_token_id` (an id or a
 * list; a file that is not valid JSON or holds ids outside the vocabulary is refused naming the key).
 */
export function eosList(config: ModelConfig, generationConfig: string | undefined, where: string): number[] {
  const ids = [config.eosTokenId, ...(config.extraEosTokenIds ?? [])].filter((x): x is number => x !== null);
  if (generationConfig === undefined) return ids;
  let json: unknown;
  try {
    json = JSON.parse(generationConfig);
  } catch (e) {
    throw new NrtError(`not valid JSON (${(e as Error).message})`, where);
  }
  const v = (json as { eos_token_id?: unknown } | null)?.eos_token_id;
  for (const x of v == null ? [] : Array.isArray(v) ? v : [v]) {
    if (!Number.isInteger(x) || x < 0 || x >= config.vocabSize)
      throw new NrtError(
        `eos_token_id: must be token ids in [0, ${config.vocabSize}), got ${JSON.stringify(v)}`,
        where,
      );
    if (!ids.includes(x)) ids.push(x);
  }
  return ids;
}

/** How deep adapters over adapters may go before the chain is called a loop. */
const MAX_ADAPTER_DEPTH = 8;

/**
 * Loads `path` (model directory, or run directory → final/ or latest checkpoint) with its tokenizer.json and, where
 * the directory has one, its chat template. An adapter directory (a LoRA run's checkpoint or final/, or PEFT's) is
 * its base (adapter_config.json's base_model_name_or_path, loaded the same way, merged if it is an adapter itself)
 * with the adapter over it; when the adapter's tokenizer has ⟨answer_start⟩ and the base's does not, the base gets
 * it as training gave it (`withAnswerStart`), so the model is the one the adapter was trained on.
 */
export function loadModel(path: string, depth = 0): LoadedModel {
  const dir = resolveModelDir(path);
  if (isAdapterDir(dir)) return loadAdapterModel(dir, depth);
  const { model, config, dtype, skipped } = loadModelDir(dir);
  if (skipped.length > 0)
    process.stderr.write(
      `note: ${dir}: skipped ${skipped.length} non-parameter buffer(s) (${skipped[0]}${skipped.length > 1 ? ", …" : ""}): RoPE is computed from config.json\n`,
    );
  const tp = join(dir, TOKENIZER_FILE);
  if (!existsSync(tp)) throw new NrtError(`missing ${TOKENIZER_FILE} (nrt needs the model's tokenizer)`, tp);
  const tokenizerJson = readTextLimited(tp, TOKENIZER_FILE, LIMITS.tokenizerBytes);
  const tokenizer = Tokenizer.fromJson(tokenizerJson, tp, { bosId: config.bosTokenId, eosId: config.eosTokenId });
  if (tokenizer.vocabSize > config.vocabSize)
    throw new NrtError(
      `tokenizer has ${tokenizer.vocabSize} ids but the model's vocab_size is ${config.vocabSize}`,
      tp,
    );
  model.sampleVocab = tokenizer.vocabSize; // padding rows past the tokenizer are never sampled
  const chatTemplate = readChatTemplate(dir, specialStrings(tokenizer));
  const tokenizerFiles: Record<string, string> = {};
  for (const f of TOKENIZER_EXTRA_FILES)
    if (existsSync(join(dir, f))) tokenizerFiles[f] = readTextLimited(join(dir, f), f);
  const stopIds = eosList(config, tokenizerFiles[GENERATION_CONFIG_FILE], join(dir, GENERATION_CONFIG_FILE));
  return { dir, model, tokenizer, tokenizerJson, chatTemplate, tokenizerFiles, dtype, stopIds };
}

/** `loadModel`, with an adapter folded into its base (for writers of whole models: GGUF, verl). */
export function loadMerged(path: string): LoadedModel {
  const loaded = loadModel(path);
  return loaded.model.adapter ? { ...loaded, model: loaded.model.merged() } : loaded;
}

function loadAdapterModel(dir: string, depth: number): LoadedModel {
  const where = join(dir, ADAPTER_CONFIG_FILE);
  if (depth >= MAX_ADAPTER_DEPTH)
    throw new NrtError(`adapters over adapters ${MAX_ADAPTER_DEPTH} deep: a loop of base_model_name_or_path?`, where);
  const { settings, base } = readAdapterConfig(dir);
  const baseDir = resolveBase(base, dir);
  let loaded = loadModel(baseDir, depth + 1);
  if (loaded.model.adapter) loaded = { ...loaded, model: loaded.model.merged() };
  const tp = join(dir, TOKENIZER_FILE);
  if (existsSync(tp) && loaded.tokenizer.answerStartId === null) {
    const own = Tokenizer.fromJson(readTextLimited(tp, TOKENIZER_FILE, LIMITS.tokenizerBytes), tp, {
      bosId: loaded.tokenizer.bosId,
      eosId: loaded.tokenizer.eosId,
    });
    if (own.answerStartId !== null) loaded = withAnswerStart(loaded).loaded;
  }
  const adapter = readAdapter(dir, loaded.model.config, settings);
  adapter.base = baseDir;
  return { ...loaded, dir, model: loaded.model.withAdapter(adapter) };
}

/**
 * The chat template of the model directory `path` stands for (SPEC §8), with ⟨bos⟩/⟨eos⟩ strings from `tok`; null
 * when it has none or `path` no longer exists.
 */
export function chatTemplateOf(path: string, tok: Tokenizer): ChatTemplate | null {
  return existsSync(path) ? readChatTemplate(resolveModelDir(path), specialStrings(tok)) : null;
}

/** ⟨bos⟩/⟨eos⟩ as text, for chat templates whose tokenizer_config.json does not name them. */
export function specialStrings(tok: Tokenizer): SpecialTokenStrings {
  const s: SpecialTokenStrings = {};
  const bos = tok.bosId === null ? null : tok.idToToken(tok.bosId);
  const eos = tok.eosId === null ? null : tok.idToToken(tok.eosId);
  if (bos !== null) s.bos_token = bos;
  if (eos !== null) s.eos_token = eos;
  return s;
}

const EMBED = "model.embed_tokens.weight";
const LM_HEAD = "lm_head.weight";

/**
 * SPEC §2: `loaded` with ⟨answer_start⟩ in its tokenizer, model and config (`answer_start_token_id`), and whether
 * anything was added. When the tokenizer lacks `<answer_start>` it is added as a special token with the id after
 * the tokenizer's last one, id = n (`Tokenizer.addAnswerStart`), and the embedding row and output (lm_head) row of
 * n become copies of ⟨eos⟩'s (with tied embeddings, the one shared matrix):
 * - n = vocab_size: the model grows to vocab_size + 1 (a new Model with the bigger config; every other tensor is
 *   copied unchanged);
 * - n < vocab_size (the config pads the vocabulary past the tokenizer, e.g. to a multiple of 64): the unused padded
 *   row n is taken and overwritten, so the shapes stay as they are.
 * Either way the logits of every other token are unchanged. When the tokenizer already has the token, only a
 * missing `answer_start_token_id` is filled in; a config naming another id is an error.
 */
export function withAnswerStart(loaded: LoadedModel): { loaded: LoadedModel; added: boolean } {
  const { model, tokenizer } = loaded;
  const config = model.config;
  const where = join(loaded.dir, TOKENIZER_FILE);
  const have = tokenizer.answerStartId;
  if (have !== null) {
    if (config.answerStartTokenId === have) return { loaded, added: false };
    if (config.answerStartTokenId !== null)
      throw new NrtError(
        `answer_start_token_id is ${config.answerStartTokenId} but the tokenizer has <answer_start> at ${have}`,
        join(loaded.dir, "config.json"),
      );
    // the same parameters, with the id recorded in the config nrt writes
    const same = model.withConfig({ ...config, answerStartTokenId: have });
    return { loaded: { ...loaded, model: same }, added: false };
  }
  const eos = tokenizer.eosId;
  if (eos === null) throw new NrtError("cannot add <answer_start>: no ⟨eos⟩ token to copy its rows from", where);
  const { json, id } = tokenizer.addAnswerStart();
  const V = config.vocabSize;
  const C = config.hiddenSize;
  let grown: Model;
  if (id < V) {
    grown = model.withConfig({ ...config, answerStartTokenId: id });
  } else {
    // an adapter targets no vocabulary matrix, so it fits the grown model as it is
    grown = new Model({ ...config, vocabSize: id + 1, answerStartTokenId: id }, undefined, model.adapter);
    for (const p of model.table) grown.view(p.name).set(model.view(p.name)); // vocab matrices: the first V rows
  }
  for (const name of [EMBED, LM_HEAD]) {
    if (!grown.has(name)) continue; // tied: no separate lm_head
    const w = grown.view(name); // (vocab, C)
    w.copyWithin(id * C, eos * C, (eos + 1) * C);
  }
  const tokenizerJson = JSON.stringify(json);
  const newTok = Tokenizer.fromJson(tokenizerJson, where, { bosId: tokenizer.bosId, eosId: tokenizer.eosId });
  const tokenizerFiles = { ...loaded.tokenizerFiles };
  const tc = tokenizerFiles[TOKENIZER_CONFIG_FILE];
  if (tc !== undefined) tokenizerFiles[TOKENIZER_CONFIG_FILE] = withAddedTokenDecoder(tc, id);
  grown.sampleVocab = Math.min(grown.config.vocabSize, Math.max(model.sampleVocab, newTok.vocabSize));
  return { loaded: { ...loaded, model: grown, tokenizer: newTok, tokenizerJson, tokenizerFiles }, added: true };
}

/**
 * tokenizer_config.json text with ⟨answer_start⟩ in its `added_tokens_decoder` (where it has one, as transformers
 * writes it), so that transformers sees the same special token as tokenizer.json; anything else is left as is.
 */
function withAddedTokenDecoder(text: string, id: number): string {
  let cfg: unknown;
  try {
    cfg = JSON.parse(text);
  } catch {
    return text; // readChatTemplate has already refused it if it mattered
  }
  const dec = (cfg as { added_tokens_decoder?: unknown } | null)?.added_tokens_decoder;
  if (typeof dec !== "object" || dec === null || Array.isArray(dec)) return text;
  (dec as Record<string, unknown>)[String(id)] = {
    content: ANSWER_START,
    lstrip: false,
    normalized: false,
    rstrip: false,
    single_word: false,
    special: true,
  };
  return `${JSON.stringify(cfg, null, 2)}\n`;
}
