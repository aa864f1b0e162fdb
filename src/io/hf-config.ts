/**
 * `config.json` (Hugging Face `LlamaConfig`, `MistralConfig`, `Qwen2Config`, `Qwen3Config`) ↔ ModelConfig
 * (SPEC §6, §8). Unknown keys are ignored; values nrt does not support are refused with an NrtError naming the key
 * (`<where>: <key>: …`).
 */
import { NrtError } from "../errors.js";
import { type Architecture, FAMILIES, type ModelConfig, type RopeScaling } from "../model/config.js";

/** `MistralConfig`'s (and Qwen2/3's) default when config.json has no `sliding_window` key at all */
const DEFAULT_WINDOW = 4096;
/** `Qwen2Config`'s default `max_window_layers` */
const QWEN_DEFAULT_MAX_WINDOW_LAYERS = 28;
/** `Qwen3Config`'s default `head_dim` */
const QWEN3_DEFAULT_HEAD_DIM = 128;
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
  if (typeof modelType !== "string" || !Object.hasOwn(FAMILIES, modelType)) {
    const known = Object.keys(FAMILIES).map((k) => JSON.stringify(k));
    throw fail("model_type", `unsupported model_type ${JSON.stringify(modelType)} (nrt reads ${known.join(", ")})`);
  }
  const arch = modelType as Architecture;
  const family = FAMILIES[arch];
  const archs = get("architectures");
  if (archs != null && !(Array.isArray(archs) && archs.includes(family.architecture))) {
    throw fail("architectures", `${JSON.stringify(archs)} does not list ${family.architecture}`);
  }
  const refuse = (key: string, ok: (v: unknown) => boolean, why: string): void => {
    const v = get(key);
    if (v !== undefined && !ok(v)) throw fail(key, `${why} (got ${JSON.stringify(v)})`);
  };
  refuse("hidden_act", (v) => v === "silu", 'nrt supports only "silu"');
  // Qwen2 has its q/k/v biases always (and no attention_bias key); elsewhere attention_bias would add an o_proj bias
  if (!family.qkvBias) refuse("attention_bias", (v) => v === null || v === false, "nrt has no attention biases here");
  refuse("mlp_bias", (v) => v === null || v === false, "nrt has no MLP biases");
  // transformers >= 5 moves rope_theta and the RoPE type into rope_parameters
  const rope = get("rope_parameters");
  const ropeScaling =
    parseRopeScaling(get("rope_scaling"), "rope_scaling", fail) ?? parseRopeScaling(rope, "rope_parameters", fail);

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
  const headDim = size("head_dim", arch === "qwen3" ? QWEN3_DEFAULT_HEAD_DIM : hiddenSize / numHeads);
  if (headDim % 2 !== 0) throw fail("head_dim", `${headDim} is odd (rotary embeddings rotate pairs)`);

  const tied = get("tie_word_embeddings") ?? false;
  if (typeof tied !== "boolean") {
    throw fail("tie_word_embeddings", `must be true or false, got ${JSON.stringify(tied)}`);
  }
  const numLayers = size("num_hidden_layers");
  let slidingWindow = 0;
  let maxWindowLayers = 0;
  if (family.window === "mistral") {
    slidingWindow = get("sliding_window") === null ? 0 : size("sliding_window", DEFAULT_WINDOW);
  } else if (family.window === "qwen") {
    // as transformers' Qwen2Config: the window (when use_sliding_window) is on the layers >= max_window_layers
    const use = get("use_sliding_window") ?? false;
    if (typeof use !== "boolean") throw fail("use_sliding_window", `must be true or false, got ${JSON.stringify(use)}`);
    const layers = get("max_window_layers") ?? QWEN_DEFAULT_MAX_WINDOW_LAYERS;
    if (!Number.isInteger(layers) || (layers as number) < 0) {
      throw fail("max_window_layers", `must be a non-negative integer, got ${JSON.stringify(layers)}`);
    }
    maxWindowLayers = layers as number;
    if (use && get("sliding_window") !== null) slidingWindow = size("sliding_window", DEFAULT_WINDOW);
    // transformers >= 4.53 may save the per-layer choice as layer_types, which then wins over max_window_layers
    const types = get("layer_types");
    if (types != null) {
      const ok = ["full_attention", "sliding_attention"];
      if (!Array.isArray(types) || types.length !== numLayers || !types.every((t) => ok.includes(t as string))) {
        throw fail(
          "layer_types",
          `must list "full_attention" or "sliding_attention" for each of the ${numLayers} layers`,
        );
      }
      const first = types.indexOf("sliding_attention");
      maxWindowLayers = first < 0 ? numLayers : first;
      if (types.slice(maxWindowLayers).some((t) => t !== "sliding_attention")) {
        throw fail("layer_types", "nrt supports sliding_attention on a last run of layers only (as max_window_layers)");
      }
    }
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
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: positive("rms_norm_eps", get("rms_norm_eps")),
    ropeTheta:
      isObject(rope) && rope.rope_theta != null
        ? positive("rope_parameters", rope.rope_theta)
        : positive("rope_theta", get("rope_theta") ?? 10000),
    ropeScaling,
    maxPositionEmbeddings: size("max_position_embeddings"),
    tied,
    slidingWindow,
    maxWindowLayers,
    qkvBias: family.qkvBias,
    qkNorm: family.qkNorm,
    bosTokenId: tokenId("bos_token_id"),
    eosTokenId: eosIds[0] ?? null,
    ...(eosIds.length > 1 && { extraEosTokenIds: eosIds.slice(1) }),
    answerStartTokenId: tokenId("answer_start_token_id"),
  };
}

/**
 * `rope_scaling` (or transformers 5's `rope_parameters`): null, absent or of type "default" → null; "linear" and
 * "llama3" as SPEC §6; any other type is refused naming `<key>.rope_type` (or `<key>.type`, whichever it used).
 */
function parseRopeScaling(v: unknown, key: string, fail: (key: string, msg: string) => NrtError): RopeScaling | null {
  if (v === undefined || v === null) return null;
  if (!isObject(v)) throw fail(key, `must be an object or null, got ${JSON.stringify(v)}`);
  const typeKey = v.rope_type !== undefined ? "rope_type" : "type";
  const type = v[typeKey] ?? "default";
  const num = (k: string, check: (x: number) => boolean, what: string): number => {
    const x = v[k];
    if (typeof x !== "number" || !Number.isFinite(x) || !check(x)) {
      throw fail(`${key}.${k}`, `must be ${what}, got ${JSON.stringify(x)}`);
    }
    return x;
  };
  if (type === "default") return null;
  if (type === "linear") return { type, factor: num("factor", (x) => x > 0, "a positive number") };
  if (type === "llama3") {
    const lowFreqFactor = num("low_freq_factor", (x) => x > 0, "a positive number");
    return {
      type,
      factor: num("factor", (x) => x > 0, "a positive number"),
      lowFreqFactor,
      highFreqFactor: num("high_freq_factor", (x) => x > lowFreqFactor, "a number above low_freq_factor"),
      originalMaxPositionEmbeddings: num("original_max_position_embeddings", (x) => x > 0, "a positive number"),
    };
  }
  throw fail(
    `${key}.${typeKey}`,
    `unsupported RoPE scaling ${JSON.stringify(type)} (nrt computes "default", "linear" and "llama3")`,
  );
}

/** config.json's `rope_scaling` object for a RopeScaling, in transformers' key names. */
function ropeScalingJson(r: RopeScaling | null): Json | null {
  if (r === null) return null;
  if (r.type === "linear") return { rope_type: "linear", factor: r.factor };
  return {
    rope_type: "llama3",
    factor: r.factor,
    low_freq_factor: r.lowFreqFactor,
    high_freq_factor: r.highFreqFactor,
    original_max_position_embeddings: r.originalMaxPositionEmbeddings,
  };
}

/**
 * The config.json object for a ModelConfig (float32 weights; `parseHfConfig` reads it back unchanged), with the
 * family's own fields.
 */
export function toHfConfig(c: ModelConfig): Record<string, unknown> {
  const family = FAMILIES[c.modelType];
  if (family.window === "none" && c.slidingWindow !== 0) {
    throw new NrtError(
      `a ${c.modelType} config.json cannot express a sliding window (use model_type mistral)`,
      "slidingWindow",
    );
  }
  if (c.qkvBias !== family.qkvBias || c.qkNorm !== family.qkNorm) {
    throw new NrtError(`biases and q/k norms are fixed by the family, not as given for ${c.modelType}`, "qkvBias");
  }
  const out: Json = {
    architectures: [family.architecture],
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
    rope_scaling: ropeScalingJson(c.ropeScaling),
    max_position_embeddings: c.maxPositionEmbeddings,
    tie_word_embeddings: c.tied,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.extraEosTokenIds?.length ? [c.eosTokenId, ...c.extraEosTokenIds] : c.eosTokenId,
    answer_start_token_id: c.answerStartTokenId,
    torch_dtype: "float32",
  };
  if (family.window === "mistral") out.sliding_window = c.slidingWindow === 0 ? null : c.slidingWindow;
  if (family.window === "qwen") {
    Object.assign(out, {
      use_sliding_window: c.slidingWindow !== 0,
      sliding_window: c.slidingWindow === 0 ? null : c.slidingWindow,
      max_window_layers: c.maxWindowLayers,
    });
  }
  if (!family.qkvBias) Object.assign(out, { attention_bias: false });
  out.mlp_bias = false;
  return out;
}

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
