import { NrtError } from "../errors.js";
import { Rng } from "../util/rng.js";
import type { ModelConfig } from "./config.js";
import { native, type ParamInfo } from "./native.js";

/** The projections a LoRA adapter can target, by PEFT's `target_modules` names (every family has all seven). */
export const LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

export function isLoraTarget(s: string): s is LoraTarget {
  return (LORA_TARGETS as readonly string[]).includes(s);
}

/** An adapter's shape: rank R, lora_alpha (the delta is scaled by alpha / R) and the projections it targets. */
export interface LoraSettings {
  rank: number;
  alpha: number;
  targets: readonly LoraTarget[];
}

/** The config the native engine takes: the model's, and the adapter's shape when there is one. */
export type NativeConfig = ModelConfig & { lora?: LoraSettings };

/**
 * A LoRA adapter over a frozen base (PEFT's LoraLayer, lora_dropout 0, bias "none"): each targeted projection
 * computes y = W x + (alpha / R) · B (A x), A (R, in), B (out, R). Its tensors live in one flat buffer laid out by
 * the native `loraTable`, named as PEFT saves them (`base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight`).
 */
export class LoraAdapter {
  readonly table: ParamInfo[];
  readonly params: Float32Array;
  /** the base model's directory, as adapter_config.json's base_model_name_or_path names it (null: not on disk) */
  base: string | null = null;
  private readonly byName: Map<string, ParamInfo>;

  constructor(
    config: ModelConfig,
    readonly settings: LoraSettings,
    params?: Float32Array,
  ) {
    this.table = native().loraTable({ ...config, lora: settings });
    const last = this.table[this.table.length - 1];
    const n = last ? last.offset + last.size : 0;
    if (params && params.length !== n) throw new Error(`expected ${n} adapter parameters, got ${params.length}`);
    this.params = params ?? new Float32Array(n);
    this.byName = new Map(this.table.map((p) => [p.name, p]));
  }

  /** alpha / R, the factor on B (A x) */
  get scale(): number {
    return this.settings.alpha / this.settings.rank;
  }

  view(name: string, buf: Float32Array = this.params): Float32Array {
    const p = this.byName.get(name);
    if (!p) throw new Error(`no adapter tensor named ${name}`);
    return buf.subarray(p.offset, p.offset + p.size);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /**
   * A fresh adapter as PEFT initialises one (`init_lora_weights=True`): A by `nn.init.kaiming_uniform_(a=√5)`, i.e.
   * uniform in ±1/√in, and B = 0, so the adapted model starts as the base. Deterministic in `seed`.
   */
  static init(config: ModelConfig, settings: LoraSettings, seed: number): LoraAdapter {
    const a = new LoraAdapter(config, settings);
    const rng = new Rng(seed);
    for (const p of a.table) {
      if (!p.name.endsWith(".lora_A.weight")) continue; // B stays 0
      const bound = 1 / Math.sqrt(p.shape[1]);
      const v = a.view(p.name);
      for (let i = 0; i < v.length; i++) v[i] = (2 * rng.next() - 1) * bound;
    }
    return a;
  }
}

/**
 * The adapter settings of `--lora-rank`, `--lora-alpha` (default 2R) and `--lora-targets` (a comma-separated list of
 * PEFT target_modules names); null for rank 0 (full fine-tuning).
 */
export function loraSettings(rank: number, alpha: number | undefined, targets: string): LoraSettings | null {
  if (rank === 0) return null;
  const list = targets
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  const bad = list.find((t) => !isLoraTarget(t));
  if (bad !== undefined)
    throw new NrtError(`unknown projection "${bad}" (known: ${LORA_TARGETS.join(", ")})`, "--lora-targets");
  if (list.length === 0) throw new NrtError("needs at least one projection", "--lora-targets");
  // in the table's order, each once
  return { rank, alpha: alpha ?? 2 * rank, targets: LORA_TARGETS.filter((t) => list.includes(t)) };
}
