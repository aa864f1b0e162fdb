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
      maxPositionEmbeddings: 2048,
      tied: false,
      slidingWindow: 0,
      bosTokenId: 1,
      eosTokenId: 2,
      answerStartTokenId: null,
    });
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
    ["rope_scaling set", { rope_scaling: { type: "linear", factor: 2 } }, /m\/config\.json: rope_scaling: .*"linear"/],
    ["llama3 rope in rope_parameters", { rope_parameters: { rope_type: "llama3" } }, /: rope_parameters: /],
    ["attention_bias true", { attention_bias: true }, /: attention_bias: nrt has no biases \(got true\)/],
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
    expect(toHfConfig(c)).not.toHaveProperty("rope_scaling");
    expect(parseHfConfig(JSON.parse(JSON.stringify(toHfConfig(c))), "c")).toEqual(c);
    const full = { ...c, slidingWindow: 0 };
    expect(toHfConfig(full).sliding_window).toBeNull();
    expect(parseHfConfig(toHfConfig(full), "c")).toEqual(full);
  });

  it("refuses a llama config with a sliding window", () => {
    expect(() => toHfConfig(llamaConfig({ slidingWindow: 4 }))).toThrow(NrtError);
  });
});
