import { Rng } from "../util/rng.js";
import type { ModelConfig } from "./config.js";
import type { LoraAdapter, NativeConfig } from "./lora.js";
import { type ModelRunner, native, type ParamInfo } from "./native.js";

/**
 * A Llama-family model: its config, one flat float32 parameter buffer with named views (Hugging Face names), and the
 * native runner that computes with it. Gradients and AdamW moments use the same layout (see `paramTable`) — or,
 * with a LoRA adapter, the adapter's: then the base buffer is frozen and only `adapter.params` is trained.
 */
export class Model {
  readonly config: ModelConfig;
  readonly params: Float32Array;
  readonly table: ParamInfo[];
  readonly runner: ModelRunner;
  /**
   * ids below this are ones the tokenizer has; generation never samples the others (a `vocab_size` padded past the
   * tokenizer, e.g. Qwen2.5's 151,936 rows for 151,665 tokens). The config's vocab_size until a loader sets it.
   */
  sampleVocab: number;
  /** the LoRA adapter over this (frozen) base, if any */
  readonly adapter: LoraAdapter | null;
  private readonly byName: Map<string, ParamInfo>;

  constructor(config: ModelConfig, params?: Float32Array, adapter?: LoraAdapter | null) {
    this.config = config;
    this.adapter = adapter ?? null;
    this.table = native().paramTable(config);
    const last = this.table[this.table.length - 1];
    const n = last.offset + last.size;
    if (params && params.length !== n) throw new Error(`expected ${n} parameters, got ${params.length}`);
    this.params = params ?? new Float32Array(n);
    this.byName = new Map(this.table.map((p) => [p.name, p]));
    this.runner = new (native().Engine)(this.nativeConfig, this.params, this.adapter?.params);
    this.sampleVocab = config.vocabSize;
  }

  /** the config the native engine takes: with the adapter's shape when there is one */
  get nativeConfig(): NativeConfig {
    return this.adapter ? { ...this.config, lora: this.adapter.settings } : this.config;
  }

  /** what training updates (and what gradients and AdamW moments are shaped like): the adapter's buffer or ours */
  get trainable(): Float32Array {
    return this.adapter?.params ?? this.params;
  }

  /** The same parameters (shared, not copied) with `adapter` over them, or without one (null). */
  withAdapter(adapter: LoraAdapter | null): Model {
    const m = new Model(this.config, this.params, adapter);
    m.sampleVocab = this.sampleVocab;
    return m;
  }

  /** The same model with `config` changed in fields that do not change the layout (the parameters are shared). */
  withConfig(config: ModelConfig): Model {
    const m = new Model(config, this.params, this.adapter);
    m.sampleVocab = this.sampleVocab;
    return m;
  }

  /**
   * The adapter folded into a copy of the base: W + (alpha / R) · B A on each targeted projection (what `nrt merge`
   * writes). A model without an adapter is copied as it is.
   */
  merged(): Model {
    const m = new Model(this.config, Float32Array.from(this.params));
    if (this.adapter) native().loraMerge(this.nativeConfig, m.params, this.adapter.params);
    m.sampleVocab = this.sampleVocab;
    return m;
  }

  get numParams(): number {
    return this.params.length;
  }

  /** the parameter tensor `name` as a view into `buf` (default: the parameters themselves) */
  view(name: string, buf: Float32Array = this.params): Float32Array {
    const p = this.byName.get(name);
    if (!p) throw new Error(`no parameter named ${name}`);
    return buf.subarray(p.offset, p.offset + p.size);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** A fresh buffer shaped like what is trained (for gradients and optimiser moments): the adapter's or ours. */
  zeros(): Float32Array {
    return new Float32Array(this.trainable.length);
  }

  /** Random initialisation: matrices N(0, std), norm weights 1, biases 0. Deterministic in `seed`. */
  static init(config: ModelConfig, seed: number, std = 0.02): Model {
    const m = new Model(config);
    const rng = new Rng(seed);
    for (const p of m.table) {
      const v = m.view(p.name);
      if (p.name.endsWith(".bias")) v.fill(0);
      else if (p.shape.length === 1) v.fill(1);
      else for (let i = 0; i < v.length; i++) v[i] = rng.normal() * std;
    }
    return m;
  }
}
