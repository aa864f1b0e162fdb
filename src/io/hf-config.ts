/**
 * `config.json` (Hugging Face `LlamaConfig` / `MistralConfig`) ↔ ModelConfig (SPEC §6, §8). Unknown keys are
 * ignored; values nrt does not support are refused with an NrtError naming the key (`<where>: <key>: …`).
 */
import { NrtError } from "../errors.js";
import type { Architecture, ModelConfig } from "../model/config.js";

const ARCHITECTURES: Record<Architecture, string> = { llama: "LlamaForCausalLM", mistral: "MistralForCausalLM" };
/** `MistralConfig`'s default when config.json has no `sliding_window` key at all (null means full attention) */
const MISTRAL_DEFAULT_WINDOW = 4096;
/** the native engine holds sizes in 32-bit ints */
const MAX_SIZE = 2 ** 31 - 1;

type Json = Record<string, unknown>;

/** Reads a parsed config.json; `where` (the file's path) prefixes every error. */
export function parseHfConfig(json: unknown, where: string): ModelConfig {
  if (!isObject(json)) throw new NrtError("config.json must hold a JSON object", where);
  const get = (key: string): unknown => (Object.hasOwn(json, key) ? json[key] : undefined);
  const fail = (key: string, msg: string): NrtError => new NrtError(msg, `${where}: ${key}`);

  const modelType = get("model_type");
  if (modelType === undefined || modelType === null) throw fail("model_type", "is required");
  if (typeof modelType !== "string" || !Object.hasOwn(ARCHITECTURES, modelType)) {
    throw fail("model_type", `unsupported model_type ${JSON.stringify(modelType)} (nrt reads "llama" and "mistral")`);
  }
  const arch = modelType as Architecture;
  const archs = get("architectures");
  if (archs != null && !(Array.isArray(archs) && archs.includes(ARCHITECTURES[arch]))) {
    throw fail("architectures", `${JSON.stringify(archs)} does not list ${ARCHITECTURES[arch]}`);
  }
  const refuse = (key: string, ok: (v: unknown) => boolean, why: string): void => {
    const v = get(key);
    if (v !== undefined && !ok(v)) throw fail(key, `${why} (got ${JSON.stringify(v)})`);
  };
  refuse("hidden_act", (v) => v === "silu", 'nrt supports only "silu"');
  refuse("rope_scaling", (v) => v === null, "nrt does not support RoPE scaling");
  refuse("attention_bias", (v) => v === null || v === false, "nrt has no biases");
  refuse("mlp_bias", (v) => v === null || v === false, "nrt has no biases");
  // transformers >= 5 moves rope_theta and the RoPE type into rope_parameters
  const rope = get("rope_parameters");
  const defaultRope = (v: unknown) => v === null || (isObject(v) && (v.rope_type ?? v.type ?? "default") === "default");
  refuse("rope_parameters", defaultRope, "nrt supports only the default RoPE");

  const size = (key: string, def?: number): number => {
    const v = get(key) ?? def;
    if (v === undefined) throw fail(key, "is required");
    if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > MAX_SIZE) {
      throw fail(key, `must be a positive integer, got ${JSON.stringify(v)}`);
    }
    return v as number;
  };
  const positive = (key: string, v: unknown): number => {
    if (v === undefined) throw fail(key, "is required");
    if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) {
      throw fail(key, `must be a positive number, got ${JSON.stringify(v)}`);
    }
    return v;
  };

  const vocabSize = size("vocab_size");
  const hiddenSize = size("hidden_size");
  const numHeads = size("num_attention_heads");
  const numKvHeads = size("num_key_value_heads", numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw fail("num_key_value_heads", `${numKvHeads} does not divide num_attention_heads ${numHeads}`);
  }
  if (get("head_dim") == null && hiddenSize % numHeads !== 0) {
    throw fail("head_dim", `is not given and hidden_size ${hiddenSize} is not a multiple of num_attention_heads`);
  }
  const headDim = size("head_dim", hiddenSize / numHeads);
  if (headDim % 2 !== 0) throw fail("head_dim", `${headDim} is odd (rotary embeddings rotate pairs)`);

  const tied = get("tie_word_embeddings") ?? false;
  if (typeof tied !== "boolean") {
    throw fail("tie_word_embeddings", `must be true or false, got ${JSON.stringify(tied)}`);
  }
  let slidingWindow = 0;
  if (arch === "mistral") {
    slidingWindow = get("sliding_window") === null ? 0 : size("sliding_window", MISTRAL_DEFAULT_WINDOW);
  }
  const tokenIds = (key: string): number[] => {
    const v = get(key);
    if (v == null) return [];
    const ids = Array.isArray(v) ? v : [v]; // eos_token_id may list several ids: each ends generation
    return ids.map((x) => checkId(key, x));
  };
  const checkId = (key: string, v: unknown): number => {
    if (!Number.isInteger(v) || (v as number) < 0 || (v as number) >= vocabSize) {
      throw fail(key, `must be a token id in [0, ${vocabSize}), got ${JSON.stringify(v)}`);
    }
    return v as number;
  };
  const eosIds = tokenIds("eos_token_id");
  const tokenId = (key: string): number | null => {
    const v = get(key);
    return v == null ? null : checkId(key, v);
  };

  return {
    modelType: arch,
    vocabSize,
    hiddenSize,
    intermediateSize: size("intermediate_size"),
    numLayers: size("num_hidden_layers"),
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: positive("rms_norm_eps", get("rms_norm_eps")),
    ropeTheta:
      isObject(rope) && rope.rope_theta != null
        ? positive("rope_parameters", rope.rope_theta)
        : positive("rope_theta", get("rope_theta") ?? 10000),
    maxPositionEmbeddings: size("max_position_embeddings"),
    tied,
    slidingWindow,
    bosTokenId: tokenId("bos_token_id"),
    eosTokenId: eosIds[0] ?? null,
    ...(eosIds.length > 1 && { extraEosTokenIds: eosIds.slice(1) }),
    answerStartTokenId: tokenId("answer_start_token_id"),
  };
}

/** The config.json object for a ModelConfig (float32 weights; `parseHfConfig` reads it back unchanged). */
export function toHfConfig(c: ModelConfig): Record<string, unknown> {
  if (c.modelType === "llama" && c.slidingWindow !== 0) {
    throw new NrtError("a llama config.json cannot express a sliding window (use model_type mistral)", "slidingWindow");
  }
  const out: Json = {
    architectures: [ARCHITECTURES[c.modelType]],
    model_type: c.modelType,
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    hidden_act: "silu",
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    max_position_embeddings: c.maxPositionEmbeddings,
    tie_word_embeddings: c.tied,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.extraEosTokenIds?.length ? [c.eosTokenId, ...c.extraEosTokenIds] : c.eosTokenId,
    answer_start_token_id: c.answerStartTokenId,
    torch_dtype: "float32",
  };
  if (c.modelType === "llama") Object.assign(out, { attention_bias: false, mlp_bias: false, rope_scaling: null });
  else out.sliding_window = c.slidingWindow === 0 ? null : c.slidingWindow;
  return out;
}

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
