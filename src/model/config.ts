/** Architectures nrt reads and writes (SPEC §6). */
export type Architecture = "llama" | "mistral";

/**
 * A model's shape, in nrt's own camelCase form. `config.json` (Hugging Face `LlamaConfig` / `MistralConfig`)
 * is converted to and from it by `src/io/hf-config.ts`; the native engine takes it as is.
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
  maxPositionEmbeddings: number;
  tied: boolean;
  /** sliding-window attention width W (Mistral); 0 means full causal attention */
  slidingWindow: number;
  bosTokenId: number | null;
  eosTokenId: number | null;
  /** the ids after the first where config.json's `eos_token_id` is a list (each one ends generation) */
  extraEosTokenIds?: number[];
  /** id of ⟨answer_start⟩ (SPEC §2), when the model has it */
  answerStartTokenId: number | null;
}

/** A small Llama config with the given overrides, for tests and from-scratch models. */
export function llamaConfig(over: Partial<ModelConfig> = {}): ModelConfig {
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
    maxPositionEmbeddings: 256,
    tied: false,
    slidingWindow: 0,
    bosTokenId: null,
    eosTokenId: null,
    answerStartTokenId: null,
  };
  const c = { ...base, ...over };
  if (!c.headDim) c.headDim = c.hiddenSize / c.numHeads;
  return c;
}
