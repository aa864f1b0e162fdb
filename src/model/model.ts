import { Rng } from "../util/rng.js";
import type { ModelConfig } from "./config.js";
import { type ModelRunner, native, type ParamInfo } from "./native.js";

/**
 * A Llama-family model: its config, one flat float32 parameter buffer with named views (Hugging Face names), and the
 * native runner that computes with it. Gradients and AdamW moments use the same layout (see `paramTable`).
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
  private readonly byName: Map<string, ParamInfo>;

  constructor(config: ModelConfig, params?: Float32Array) {
    this.config = config;
    this.table = native().paramTable(config);
    const last = this.table[this.table.length - 1];
    const n = last.offset + last.size;
    if (params && params.length !== n) throw new Error(`expected ${n} parameters, got ${params.length}`);
    this.params = params ?? new Float32Array(n);
    this.byName = new Map(this.table.map((p) => [p.name, p]));
    this.runner = new (native().Engine)(config, this.params);
    this.sampleVocab = config.vocabSize;
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

  /** A fresh buffer shaped like the parameters (for gradients and optimiser moments). */
  zeros(): Float32Array {
    return new Float32Array(this.params.length);
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
