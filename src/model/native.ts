import { createRequire } from "node:module";
import type { ModelConfig } from "./config.js";
import type { NativeConfig } from "./lora.js";

/** One row of the parameter table: Hugging Face name, shape, offset and size in the flat buffer. */
export interface ParamInfo {
  name: string;
  shape: number[];
  offset: number;
  size: number;
  /** AdamW applies weight decay to this tensor (matrices) or not (norm weights) */
  decay: boolean;
}

export interface ForwardResult {
  /** log p(tokens[t] | earlier tokens of its sequence); 0 at each sequence's first token */
  logprobs: Float32Array;
  /** entropy (nats) of the distribution that predicted tokens[t]; 0 at each sequence's first token */
  entropy: Float32Array;
}

export interface GenerateOptions {
  maxNew: number;
  /** 0 means greedy */
  temperature: number;
  topK?: number;
  topP?: number;
  seed: number;
  /** one seed per stream: stream b draws from seeds[b] alone (integers < 2^53), instead of from (seed, b) */
  seeds?: readonly number[];
  /** a stream ends after emitting one of these ids (the id is included in its tokens) */
  stop: number[];
  /** only ids below this are sampled (default: all): a vocab_size padded past the tokenizer has rows no text has */
  vocabLimit?: number;
}

export interface GenerateResult {
  /** (B, maxNew), -1 past each stream's length */
  tokens: Int32Array;
  /** (B, maxNew) log-probability of each token under the model at temperature 1 */
  logprobs: Float32Array;
  /** (B, maxNew) entropy of the model's distribution at each step */
  entropy: Float32Array;
  lengths: Int32Array;
  /** 1 where the stream ended on a stop id */
  stopped: Uint8Array;
}

/** AdamW settings of one update: decoupled weight decay (on the tensors the table marks), global-norm clip. */
export interface AdamWSettings {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** global gradient-norm clip; 0 disables */
  clip: number;
}

/** AdamW's state over the flat buffer: both moments in the parameters' layout, and the updates applied so far. */
export interface AdamWState {
  m: Float32Array;
  v: Float32Array;
  /** updates applied; the next one is step + 1 (1-based, for bias correction) */
  step: number;
}

/**
 * The addon's object for one model: forward, backward and generation over the model's own parameter buffer (read at
 * each call, never copied). Not the trainer's `Engine` seam (src/engine/), which the in-process engine implements
 * over this.
 */
export interface ModelRunner {
  forward(tokens: Int32Array, seqLens: Int32Array): ForwardResult;
  backward(weights: Float32Array, grads: Float32Array): number;
  logits(): Float32Array;
  generate(prompts: Int32Array, promptLens: Int32Array, opts: GenerateOptions): GenerateResult;
  cachedLogits(tokens: Int32Array, prefix: number): Float32Array;
}

interface NativeModule {
  /** `adapter`: the LoRA adapter's buffer (laid out by loraTable) when config.lora is set */
  Engine: new (
    config: NativeConfig,
    params: Float32Array,
    adapter?: Float32Array,
  ) => ModelRunner;
  paramTable(config: ModelConfig): ParamInfo[];
  /** the adapter's tensors (config.lora), by PEFT's names; empty without one */
  loraTable(config: NativeConfig): ParamInfo[];
  /** params += (alpha / R) · B A on each targeted projection, in place */
  loraMerge(config: NativeConfig, params: Float32Array, adapter: Float32Array): void;
  setThreads(n: number): void;
  getThreads(): number;
  gradNorm(grads: Float32Array): number;
  /** `params`: what is trained, the model's buffer or (with config.lora) the adapter's */
  adamw(
    config: NativeConfig,
    params: Float32Array,
    grads: Float32Array,
    m: Float32Array,
    v: Float32Array,
    /** `step`: this update's 1-based number */
    opts: AdamWSettings & { step: number },
  ): number;
}

let cached: NativeModule | undefined;

/** The compiled addon (native/build/Release/nrt_native.node), loaded once. */
export function native(): NativeModule {
  if (!cached) {
    // libgomp spins at every barrier by default, which makes a two-thread step several times slower whenever
    // another process holds a core (bench/README.md); passive waiting is the robust default. Read at load time.
    process.env.OMP_WAIT_POLICY ??= "passive";
    const require = createRequire(import.meta.url);
    try {
      cached = require("../../native/build/Release/nrt_native.node") as NativeModule;
    } catch (e) {
      throw new Error(`the native engine is not built (run \`npm run build\`): ${(e as Error).message}`);
    }
  }
  return cached;
}

/** Sets the compute threads of OpenBLAS and of nrt's kernels. Results are reproducible per thread count. */
export function setThreads(n: number): void {
  native().setThreads(n);
}
