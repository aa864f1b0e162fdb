/** Families nrt reads and writes (SPEC §6): config.json's `model_type`. */
export type Architecture = "llama" | "mistral" | "qwen2" | "qwen3";

/**
 * What a family adds to the Llama block (STYLE 17: a family is its difference): its `architectures` class, q/k/v
 * projection biases (Qwen2), an RMSNorm over each head of q and k before RoPE (Qwen3), and how config.json states
 * a sliding window (Mistral: `sliding_window`; Qwen2/3: `use_sliding_window` on the layers from `max_window_layers`).
 */
export interface Family {
  architecture: string;
  qkvBias: boolean;
  qkNorm: boolean;
  window: "none" | "mistral" | "qwen";
}
export const FAMILIES: Record<Architecture, Family> = {
  llama: { architecture: "LlamaForCausalLM", qkvBias: false, qkNorm: false, window: "none" },
  mistral: { architecture: "MistralForCausalLM", qkvBias: false, qkNorm: false, window: "mistral" },
  qwen2: { architecture: "Qwen2ForCausalLM", qkvBias: true, qkNorm: false, window: "qwen" },
  qwen3: { architecture: "Qwen3ForCausalLM", qkvBias: false, qkNorm: true, window: "qwen" },
};

/**
 * RoPE frequency scaling (config.json's `rope_scaling`), as transformers' modeling_rope_utils: `linear` divides
 * the positions by `factor`; `llama3` (Llama 3.1+) rescales the low frequencies by `factor` and blends the middle
 * band between `lowFreqFactor` and `highFreqFactor` of `originalMaxPositionEmbeddings`.
 */
export type RopeScaling =
  | { type: "linear"; factor: number }
  | {
      type: "llama3";
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    };

/**
 * A model's shape, in nrt's own camelCase form. `config.json` (Hugging Face `LlamaConfig`, `MistralConfig`,
 * `Qwen2Config`, `Qwen3Config`) is converted to and from it by `src/io/hf-config.ts`; the native engine takes it
 * as is.
 */
export interface ModelConfig {
  modelType: Architecture;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  /** per-head size; hiddenSize / numHeads unless config.json's `head_dim` says otherwise */
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** null: plain RoPE */
  ropeScaling: RopeScaling | null;
  maxPositionEmbeddings: number;
  tied: boolean;
  /** sliding-window attention width W (Mistral, Qwen2/3 with use_sliding_window); 0 means full causal attention */
  slidingWindow: number;
  /** the window applies to layers maxWindowLayers and up (Qwen2/3's `max_window_layers`); 0 for Mistral */
  maxWindowLayers: number;
  /** self_attn.{q,k,v}_proj.bias (Qwen2) */
  qkvBias: boolean;
  /** self_attn.{q,k}_norm.weight, per-head RMSNorm of q and k before RoPE (Qwen3) */
  qkNorm: boolean;
  bosTokenId: number | null;
  eosTokenId: number | null;
  /** the ids after the first where config.json's `eos_token_id` is a list (each one ends generation) */
  extraEosTokenIds?: number[];
  /** id of ⟨answer_start⟩ (SPEC §2), when the model has it */
  answerStartTokenId: number | null;
}

/**
 * A small config with the given overrides, for tests and from-scratch models: Llama unless `modelType` says
 * otherwise, with that family's options (biases, q/k norm) unless given.
 */
export function llamaConfig(over: Partial<ModelConfig> = {}): ModelConfig {
  const family = FAMILIES[over.modelType ?? "llama"];
  const base: ModelConfig = {
    modelType: "llama",
    vocabSize: 32,
    hiddenSize: 64,
    intermediateSize: 128,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 4,
    headDim: 0,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: null,
    maxPositionEmbeddings: 256,
    tied: false,
    slidingWindow: 0,
    maxWindowLayers: 0,
    qkvBias: family.qkvBias,
    qkNorm: family.qkNorm,
    bosTokenId: null,
    eosTokenId: null,
    answerStartTokenId: null,
  };
  const c = { ...base, ...over };
  if (!c.headDim) c.headDim = c.hiddenSize / c.numHeads;
  return c;
}
