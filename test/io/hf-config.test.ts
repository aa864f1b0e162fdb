import { describe, expect, it } from "vitest";
import { NrtError } from "../../src/errors.js";
import { parseHfConfig, toHfConfig } from "../../src/io/hf-config.js";
import { llamaConfig } from "../../src/model/config.js";

/** TinyLlama-1.1B's config.json as published (keys nrt ignores included). */
const tinyLlama = {
  architectures: ["LlamaForCausalLM"],
  attention_bias: false,
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: "silu",
  hidden_size: 2048,
  initializer_range: 0.02,
  intermediate_size: 5632,
  max_position_embeddings: 2048,
  model_type: "llama",
  num_attention_heads: 32,
  num_hidden_layers: 22,
  num_key_value_heads: 4,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  rope_theta: 10000.0,
  tie_word_embeddings: false,
  torch_dtype: "bfloat16",
  transformers_version: "4.35.0",
  use_cache: true,
  vocab_size: 32000,
};

/** Mistral-7B-v0.1's config.json. */
const mistral7b = {
  architectures: ["MistralForCausalLM"],
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: "silu",
  hidden_size: 4096,
  initializer_range: 0.02,
  intermediate_size: 14336,
  max_position_embeddings: 32768,
  model_type: "mistral",
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  sliding_window: 4096,
  tie_word_embeddings: false,
  torch_dtype: "bfloat16",
  transformers_version: "4.34.0.dev0",
  use_cache: true,
  vocab_size: 32000,
};

/** Llama-3.2-1B's config.json (rope_scaling llama3, tied, eos list). */
const llama32 = {
  architectures: ["LlamaForCausalLM"],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
  head_dim: 64,
  hidden_act: "silu",
  hidden_size: 2048,
  initializer_range: 0.02,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: "llama",
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: {
    factor: 32.0,
    high_freq_factor: 4.0,
    low_freq_factor: 1.0,
    original_max_position_embeddings: 8192,
    rope_type: "llama3",
  },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  transformers_version: "4.45.0.dev0",
  use_cache: true,
  vocab_size: 128256,
};

/** Qwen2.5-0.5B-Instruct's config.json. */
const qwen25 = {
  architectures: ["Qwen2ForCausalLM"],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  hidden_act: "silu",
  hidden_size: 896,
  initializer_range: 0.02,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 21,
  model_type: "qwen2",
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  transformers_version: "4.43.1",
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

/** Qwen3-0.6B's config.json (head_dim 128 ≠ 1024 / 16). */
const qwen3 = {
  architectures: ["Qwen3ForCausalLM"],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  head_dim: 128,
  hidden_act: "silu",
  hidden_size: 1024,
  initializer_range: 0.02,
  intermediate_size: 3072,
  max_position_embeddings: 40960,
  max_window_layers: 28,
  model_type: "qwen3",
  num_attention_heads: 16,
  num_hidden_layers: 28,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: null,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  transformers_version: "4.51.0",
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

function refusal(json: unknown): string {
  try {
    parseHfConfig(json, "m/config.json");
  } catch (e) {
    expect(e).toBeInstanceOf(NrtError);
    return (e as Error).message;
  }
  return expect.fail("expected an NrtError");
}

describe("parseHfConfig", () => {
  it("reads a published Llama config", () => {
    expect(parseHfConfig(tinyLlama, "c")).toEqual({
      modelType: "llama",
      vocabSize: 32000,
      hiddenSize: 2048,
      intermediateSize: 5632,
      numLayers: 22,
      numHeads: 32,
      numKvHeads: 4,
      headDim: 64,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
      ropeScaling: null,
      maxPositionEmbeddings: 2048,
      tied: false,
      slidingWindow: 0,
      maxWindowLayers: 0,
      qkvBias: false,
      qkNorm: false,
      bosTokenId: 1,
      eosTokenId: 2,
      answerStartTokenId: null,
    });
  });

  it("reads a published Llama 3.2 config: rope_scaling llama3", () => {
    expect(parseHfConfig(llama32, "c")).toMatchObject({
      modelType: "llama",
      ropeTheta: 500000,
      ropeScaling: {
        type: "llama3",
        factor: 32,
        lowFreqFactor: 1,
        highFreqFactor: 4,
        originalMaxPositionEmbeddings: 8192,
      },
      tied: true,
      headDim: 64,
    });
    const linear = { ...tinyLlama, rope_scaling: { type: "linear", factor: 2 } };
    expect(parseHfConfig(linear, "c").ropeScaling).toEqual({ type: "linear", factor: 2 });
    const dflt = { ...tinyLlama, rope_scaling: { rope_type: "default" } };
    expect(parseHfConfig(dflt, "c").ropeScaling).toBeNull();
  });

  it("reads published Qwen2.5 and Qwen3 configs: biases, q/k norm, head_dim, windows per max_window_layers", () => {
    expect(parseHfConfig(qwen25, "c")).toMatchObject({
      modelType: "qwen2",
      qkvBias: true,
      qkNorm: false,
      headDim: 64,
      slidingWindow: 0, // use_sliding_window false
      maxWindowLayers: 21,
      tied: true,
    });
    const windowed = parseHfConfig({ ...qwen25, use_sliding_window: true, sliding_window: 4096 }, "c");
    expect(windowed).toMatchObject({ slidingWindow: 4096, maxWindowLayers: 21 });
    // layer_types (transformers >= 4.53) wins over max_window_layers
    const types = (k: number) =>
      Array.from({ length: 24 }, (_, i) => (i >= k ? "sliding_attention" : "full_attention"));
    const typed = { ...qwen25, use_sliding_window: true, sliding_window: 4096, layer_types: types(20) };
    expect(parseHfConfig(typed, "c")).toMatchObject({ slidingWindow: 4096, maxWindowLayers: 20 });
    expect(parseHfConfig({ ...typed, layer_types: types(24) }, "c").maxWindowLayers).toBe(24);
    const mixed = [...types(20)];
    mixed[3] = "sliding_attention";
    expect(refusal({ ...typed, layer_types: mixed })).toMatch(/: layer_types: .*last run of layers/);
    expect(refusal({ ...typed, layer_types: types(20).slice(1) })).toMatch(/: layer_types: must list/);
    expect(parseHfConfig(qwen3, "c")).toMatchObject({
      modelType: "qwen3",
      qkvBias: false,
      qkNorm: true,
      headDim: 128,
      slidingWindow: 0,
    });
    const { head_dim: _, ...noHeadDim } = qwen3;
    expect(parseHfConfig(noHeadDim, "c").headDim).toBe(128); // Qwen3Config's default
  });

  it("reads a published Mistral config, and sliding_window null / absent as HF does", () => {
    const c = parseHfConfig(mistral7b, "c");
    expect(c).toMatchObject({ modelType: "mistral", numKvHeads: 8, headDim: 128, slidingWindow: 4096 });
    expect(parseHfConfig({ ...mistral7b, sliding_window: null }, "c").slidingWindow).toBe(0);
    const { sliding_window: _, ...noWindow } = mistral7b;
    expect(parseHfConfig(noWindow, "c").slidingWindow).toBe(4096); // MistralConfig's default
  });

  it("applies the defaults: kv heads, head_dim, rope_theta, tied, token ids; eos lists give their first id", () => {
    const minimal = {
      model_type: "llama",
      vocab_size: 10,
      hidden_size: 8,
      intermediate_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      rms_norm_eps: 1e-6,
      max_position_embeddings: 32,
    };
    expect(parseHfConfig(minimal, "c")).toMatchObject({
      numKvHeads: 2,
      headDim: 4,
      ropeTheta: 10000,
      tied: false,
      bosTokenId: null,
      eosTokenId: null,
      answerStartTokenId: null,
    });
    const c = parseHfConfig({ ...minimal, eos_token_id: [7, 9], head_dim: 6, answer_start_token_id: 3 }, "c");
    expect(c).toMatchObject({ eosTokenId: 7, headDim: 6, answerStartTokenId: 3 });
    expect(
      parseHfConfig({ ...minimal, rope_parameters: { rope_type: "default", rope_theta: 5e5 } }, "c").ropeTheta,
    ).toBe(5e5);
  });

  const refusals: [string, Record<string, unknown>, RegExp][] = [
    [
      "rope_scaling yarn",
      { rope_scaling: { rope_type: "yarn", factor: 4 } },
      /m\/config\.json: rope_scaling\.rope_type: .*"yarn"/,
    ],
    [
      "rope_scaling type dynamic",
      { rope_scaling: { type: "dynamic", factor: 2 } },
      /: rope_scaling\.type: .*"dynamic"/,
    ],
    ["linear rope without factor", { rope_scaling: { type: "linear" } }, /: rope_scaling\.factor: must be a positive/],
    [
      "llama3 rope without low_freq_factor",
      { rope_scaling: { ...llama32.rope_scaling, low_freq_factor: undefined } },
      /: rope_scaling\.low_freq_factor: /,
    ],
    [
      "llama3 rope in rope_parameters without its factors",
      { rope_parameters: { rope_type: "llama3" } },
      /: rope_parameters\.low_freq_factor: /,
    ],
    ["rope_parameters longrope", { rope_parameters: { rope_type: "longrope" } }, /: rope_parameters\.rope_type: /],
    [
      "attention_bias true",
      { attention_bias: true },
      /: attention_bias: nrt has no attention biases here \(got true\)/,
    ],
    ["mlp_bias true", { mlp_bias: true }, /: mlp_bias: /],
    ["hidden_act gelu", { hidden_act: "gelu" }, /: hidden_act: nrt supports only "silu" \(got "gelu"\)/],
    ["unknown model_type", { model_type: "gpt2" }, /: model_type: unsupported model_type "gpt2"/],
    ["missing model_type", { model_type: undefined }, /: model_type: is required/],
    ["wrong architectures", { architectures: ["LlamaForSequenceClassification"] }, /: architectures: /],
    ["missing hidden_size", { hidden_size: undefined }, /: hidden_size: is required/],
    ["missing rms_norm_eps", { rms_norm_eps: undefined }, /: rms_norm_eps: is required/],
    ["fractional size", { intermediate_size: 5632.5 }, /: intermediate_size: must be a positive integer, got 5632.5/],
    ["zero layers", { num_hidden_layers: 0 }, /: num_hidden_layers: must be a positive integer/],
    ["string size", { vocab_size: "32000" }, /: vocab_size: must be a positive integer, got "32000"/],
    ["heads not divisible by kv heads", { num_key_value_heads: 5 }, /: num_key_value_heads: 5 does not divide/],
    ["odd head_dim", { head_dim: 63 }, /: head_dim: 63 is odd/],
    ["hidden not divisible by heads", { hidden_size: 2050 }, /: head_dim: is not given and hidden_size 2050/],
    ["negative eps", { rms_norm_eps: -1 }, /: rms_norm_eps: must be a positive number/],
    ["eos out of vocab", { eos_token_id: 32000 }, /: eos_token_id: must be a token id in \[0, 32000\)/],
    ["tie_word_embeddings not boolean", { tie_word_embeddings: "yes" }, /: tie_word_embeddings: /],
  ];
  for (const [what, change, message] of refusals) {
    it(`refuses ${what}, naming the key`, () => expect(refusal({ ...tinyLlama, ...change })).toMatch(message));
  }
  it("refuses a qwen3 attention_bias (it would add an o_proj bias) and a non-boolean use_sliding_window", () => {
    expect(refusal({ ...qwen3, attention_bias: true })).toMatch(/: attention_bias: /);
    expect(refusal({ ...qwen25, use_sliding_window: "no" })).toMatch(/: use_sliding_window: /);
    expect(refusal({ ...qwen25, max_window_layers: -1 })).toMatch(/: max_window_layers: /);
  });
  it("refuses a mistral sliding_window of 0 or a non-integer, and a non-object", () => {
    expect(refusal({ ...mistral7b, sliding_window: 0 })).toMatch(/: sliding_window: must be a positive integer/);
    expect(refusal({ ...mistral7b, sliding_window: "4096" })).toMatch(/: sliding_window: /);
    expect(refusal([tinyLlama])).toMatch(/^m\/config\.json: config\.json must hold a JSON object/);
  });
});

describe("toHfConfig", () => {
  it("writes the HF keys for llama, and parseHfConfig reads it back unchanged", () => {
    const c = llamaConfig({ numKvHeads: 2, tied: true, bosTokenId: 1, eosTokenId: 2, answerStartTokenId: 3 });
    const json = toHfConfig(c);
    expect(json).toMatchObject({
      architectures: ["LlamaForCausalLM"],
      model_type: "llama",
      torch_dtype: "float32",
      hidden_act: "silu",
      attention_bias: false,
      rope_scaling: null,
      tie_word_embeddings: true,
      num_key_value_heads: 2,
      head_dim: 16,
    });
    expect(json).not.toHaveProperty("sliding_window");
    expect(parseHfConfig(JSON.parse(JSON.stringify(json)), "c")).toEqual(c);
  });

  it("writes sliding_window for mistral (null when 0) and round-trips head_dim ≠ hidden/heads", () => {
    const c = llamaConfig({ modelType: "mistral", headDim: 24, slidingWindow: 8 });
    expect(toHfConfig(c)).toMatchObject({ architectures: ["MistralForCausalLM"], sliding_window: 8, head_dim: 24 });
    expect(toHfConfig(c).rope_scaling).toBeNull();
    expect(parseHfConfig(JSON.parse(JSON.stringify(toHfConfig(c))), "c")).toEqual(c);
    const full = { ...c, slidingWindow: 0 };
    expect(toHfConfig(full).sliding_window).toBeNull();
    expect(parseHfConfig(toHfConfig(full), "c")).toEqual(full);
  });

  it("writes each family's fields (rope_scaling, qwen windows) and reads them back unchanged", () => {
    const configs = [
      parseHfConfig(llama32, "c"),
      llamaConfig({ ropeScaling: { type: "linear", factor: 4 } }),
      parseHfConfig(qwen25, "c"),
      parseHfConfig({ ...qwen25, use_sliding_window: true, sliding_window: 64 }, "c"),
      parseHfConfig(qwen3, "c"),
    ];
    for (const c of configs) {
      const json = JSON.parse(JSON.stringify(toHfConfig(c)));
      expect(parseHfConfig(json, "c")).toEqual({ ...c, eosTokenId: c.eosTokenId });
    }
    expect(toHfConfig(configs[0]).rope_scaling).toEqual(llama32.rope_scaling);
    expect(toHfConfig(configs[2])).toMatchObject({
      architectures: ["Qwen2ForCausalLM"],
      use_sliding_window: false,
      max_window_layers: 21,
    });
    expect(toHfConfig(configs[2])).not.toHaveProperty("attention_bias");
    expect(toHfConfig(configs[4])).toMatchObject({ architectures: ["Qwen3ForCausalLM"], head_dim: 128 });
  });

  it("refuses a llama config with a sliding window", () => {
    expect(() => toHfConfig(llamaConfig({ slidingWindow: 4 }))).toThrow(NrtError);
  });
});
