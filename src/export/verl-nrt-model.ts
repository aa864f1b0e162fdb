/**
 * The model directory of a verl-nrt export: nrt's model with recipe/nrt's `<|response_start|>` token, and the
 * tokenizer files `transformers` (and so verl) needs to render and tokenise the prompts as nrt does.
 *
 * ⟨answer_start⟩ of SPEC §2 and the recipe's `<|response_start|>` are the same thing: the one special token
 * between the trace and the reference answer. So the export gives nrt's token the recipe's name:
 * - a model with `<answer_start>` (every model nrt trained): the token is renamed in place, same id, same
 *   (trained) embedding and output rows; nothing grows;
 * - a model without it: nrt adds it as `nrt train` does (`withAnswerStart`: id after the tokenizer's last one,
 *   rows copied from ⟨eos⟩'s, as `add_response_start_token_to_model.py` does), then names it `<|response_start|>`;
 * - a model that already has `<|response_start|>` (prepared by the recipe's script) keeps it as it is.
 */
import { type ChatTemplate, type SpecialTokenStrings, TOKENIZER_CONFIG_FILE } from "../chat/template.js";
import { NrtError } from "../errors.js";
import { type LoadedModel, specialStrings, TOKENIZER_FILE, withAnswerStart } from "../io/load.js";
import { Model } from "../model/model.js";
import { Tokenizer } from "../tokenizer/tokenizer.js";
import { ANSWER_START, checkTokenizerJson, type TokenizerJson } from "../tokenizer/tokenizer-json.js";

/** The recipe's response-start token (recipe/nrt/add_response_start_token_to_model.py). */
export const RESPONSE_START = "<|response_start|>";

const SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json";
const PAD = "<pad>";

/** How the export came by `<|response_start|>`. */
export type ResponseStartOrigin = "renamed" | "added" | "present";

export interface VerlNrtModel {
  /** the exported model (grown by one row when the token was added) */
  model: Model;
  /** the exported tokenizer.json text and the other tokenizer files, by name */
  files: Record<string, string>;
  /** the exported tokenizer, as transformers will see it (`<|response_start|>` an added special token) */
  tokenizer: Tokenizer;
  responseStartId: number;
  origin: ResponseStartOrigin;
  /** true when the source model had no chat template and the export writes nrt's plain prompt as one */
  templateAdded: boolean;
  /** the source of the exported chat template and the special-token strings transformers renders it with */
  chatTemplate: string;
  specialTokens: SpecialTokenStrings;
}

/**
 * nrt's prompt for a model without a chat template (SPEC §7, `promptIds`): ⟨bos⟩ ⊕ the last user turn, written as
 * a chat template so that verl's `apply_chat_template(…, add_generation_prompt=True)` renders exactly that text.
 */
export function plainPromptTemplate(withBos: boolean): string {
  return (
    "{%- set ns = namespace(q='') -%}" +
    "{%- for m in messages -%}{%- if m['role'] == 'user' -%}{%- set ns.q = m['content'] -%}{%- endif -%}{%- endfor -%}" +
    `${withBos ? "{{ bos_token }}" : ""}{{ ns.q }}`
  );
}

/** `loaded` (already through `withAnswerStart` or not) as the model directory of a verl-nrt export. */
export function verlNrtModel(source: LoadedModel): VerlNrtModel {
  const where = `${source.dir}/${TOKENIZER_FILE}`;
  const hasResponseStart = source.tokenizer.tokenToId(RESPONSE_START);
  let loaded: LoadedModel;
  let origin: ResponseStartOrigin;
  let id: number;
  let json: TokenizerJson;
  if (hasResponseStart !== null) {
    if (source.tokenizer.answerStartId !== null)
      throw new NrtError(
        `has both ${ANSWER_START} (id ${source.tokenizer.answerStartId}) and ${RESPONSE_START} (id ${hasResponseStart}): ` +
          "which one ends the trace is ambiguous",
        where,
      );
    if (!source.tokenizer.specialIds.has(hasResponseStart))
      throw new NrtError(`${RESPONSE_START} is in the vocabulary but not as a special added token`, where);
    loaded = source;
    origin = "present";
    id = hasResponseStart;
    json = source.tokenizer.toJson();
    if (loaded.model.config.answerStartTokenId !== id)
      loaded = { ...loaded, model: new Model({ ...loaded.model.config, answerStartTokenId: id }, loaded.model.params) };
  } else {
    const r = withAnswerStart(source);
    loaded = r.loaded;
    origin = r.added ? "added" : "renamed";
    id = loaded.tokenizer.answerStartId as number; // withAnswerStart guarantees it
    json = renameToken(loaded.tokenizer.toJson(), id, ANSWER_START, RESPONSE_START, where);
  }
  const tokenizerJson = JSON.stringify(json);
  const { bosId, eosId } = loaded.tokenizer;
  const tokenizer = Tokenizer.fromJson(tokenizerJson, where, { bosId, eosId });
  const ids = tokenizer.encode(RESPONSE_START);
  if (ids.length !== 1 || ids[0] !== id)
    throw new NrtError(`${RESPONSE_START} encodes to [${ids.join(", ")}], not to its id ${id}`, where);

  const files: Record<string, string> = { ...loaded.tokenizerFiles, [TOKENIZER_FILE]: tokenizerJson };
  const special = specialStrings(loaded.tokenizer);
  // verl pads prompts (left) with pad_token, else with ⟨eos⟩; a tokenizer's own <pad> is named where it has one
  if (tokenizer.specialIds.has(tokenizer.tokenToId(PAD) ?? -1)) special.pad_token = PAD;
  const templateAdded = loaded.chatTemplate === null;
  const cfg = tokenizerConfig(
    files[TOKENIZER_CONFIG_FILE],
    id,
    special,
    templateAdded ? plainPromptTemplate(bosId !== null) : null,
    loaded.model.config.maxPositionEmbeddings,
    `${source.dir}/${TOKENIZER_CONFIG_FILE}`,
  );
  files[TOKENIZER_CONFIG_FILE] = `${JSON.stringify(cfg, null, 2)}\n`;
  const map = files[SPECIAL_TOKENS_MAP_FILE];
  if (map !== undefined)
    files[SPECIAL_TOKENS_MAP_FILE] = specialTokensMap(map, `${source.dir}/${SPECIAL_TOKENS_MAP_FILE}`);
  const template = loaded.chatTemplate as ChatTemplate | null;
  return {
    model: loaded.model,
    files,
    tokenizer,
    responseStartId: id,
    origin,
    templateAdded,
    chatTemplate: template ? template.source : (cfg.chat_template as string),
    specialTokens: template ? { ...template.specialTokens } : stringsOf(cfg, special),
  };
}

/** A tokenizer.json with the added token `from` at `id` renamed `to` (in `added_tokens` and the model's vocab). */
export function renameToken(json: TokenizerJson, id: number, from: string, to: string, where: string): TokenizerJson {
  const out = checkTokenizerJson(json, where);
  const added = out.added_tokens.find((t) => t.id === id && t.content === from);
  if (!added) throw new NrtError(`no added token ${from} with id ${id} to rename`, where);
  added.content = to;
  const vocab = out.model.vocab;
  if (Array.isArray(vocab)) {
    // Unigram: [piece, score] at index id
    if (vocab[id]?.[0] === from) vocab[id] = [to, vocab[id][1]];
  } else if (vocab[from] === id) {
    delete vocab[from];
    vocab[to] = id;
  }
  return out;
}

const SPECIAL_ENTRY = { lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };

/**
 * tokenizer_config.json for transformers: the source's (if any) with `<answer_start>` renamed in
 * `added_tokens_decoder` and `additional_special_tokens`, `<|response_start|>` listed as a special token, the
 * ⟨bos⟩/⟨eos⟩ strings nrt renders templates with where it names none, and `template` as `chat_template` when given.
 * Without a source file: a `PreTrainedTokenizerFast` config over tokenizer.json.
 */
function tokenizerConfig(
  text: string | undefined,
  id: number,
  special: SpecialTokenStrings,
  template: string | null,
  maxLen: number,
  where: string,
): Record<string, unknown> {
  let cfg: Record<string, unknown>;
  if (text === undefined) {
    cfg = { tokenizer_class: "PreTrainedTokenizerFast", clean_up_tokenization_spaces: false, model_max_length: maxLen };
  } else {
    cfg = parseObject(text, where);
  }
  for (const k of ["bos_token", "eos_token", "pad_token"] as const) {
    const s = special[k];
    if (cfg[k] === undefined && s !== undefined) cfg[k] = s;
  }
  const dec = cfg.added_tokens_decoder;
  if (typeof dec === "object" && dec !== null && !Array.isArray(dec)) {
    const d = dec as Record<string, unknown>;
    d[String(id)] = { ...SPECIAL_ENTRY, ...(d[String(id)] as object | undefined), content: RESPONSE_START };
  }
  cfg.additional_special_tokens = withResponseStart(cfg.additional_special_tokens);
  if (template !== null) cfg.chat_template = template;
  return cfg;
}

/** special_tokens_map.json with `<|response_start|>` in place of `<answer_start>` among the additional tokens. */
function specialTokensMap(text: string, where: string): string {
  const m = parseObject(text, where);
  m.additional_special_tokens = withResponseStart(m.additional_special_tokens);
  return `${JSON.stringify(m, null, 2)}\n`;
}

/** A list of additional special tokens (strings or AddedToken objects) with ⟨answer_start⟩ → ⟨response_start⟩. */
function withResponseStart(list: unknown): unknown[] {
  const name = (t: unknown) =>
    typeof t === "string" ? t : ((t as { content?: unknown } | null)?.content as string | undefined);
  const kept = (Array.isArray(list) ? list : []).filter((t) => name(t) !== ANSWER_START && name(t) !== RESPONSE_START);
  return [...kept, RESPONSE_START];
}

function stringsOf(cfg: Record<string, unknown>, fallback: SpecialTokenStrings): SpecialTokenStrings {
  const out: SpecialTokenStrings = { ...fallback };
  for (const k of ["bos_token", "eos_token", "unk_token", "pad_token"] as const) {
    const v = cfg[k];
    const s = typeof v === "string" ? v : (v as { content?: unknown } | null)?.content;
    if (typeof s === "string") out[k] = s;
  }
  return out;
}

function parseObject(text: string, where: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new NrtError(`not valid JSON (${(e as Error).message})`, where);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new NrtError("must hold a JSON object", where);
  return v as Record<string, unknown>;
}
