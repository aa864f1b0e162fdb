/**
 * `nrt merge`: a LoRA adapter folded into its base, W + (alpha / R) · B A on each targeted projection, written as a
 * whole model directory (config.json, weights, tokenizer) that needs neither PEFT nor the adapter.
 */
import { NrtError } from "../errors.js";
import { loadModel, TOKENIZER_FILE } from "../io/load.js";
import { saveModelDir } from "../io/model-dir.js";
import type { SafetensorsDtype } from "../io/safetensors.js";

export interface MergeOptions {
  /** the weights' dtype; default the base's */
  dtype?: SafetensorsDtype;
  maxShardBytes?: number;
}

export interface MergeResult {
  /** the base model's directory */
  base: string;
  rank: number;
  alpha: number;
  targets: readonly string[];
  params: number;
  dtype: SafetensorsDtype;
}

/** Merges the adapter `path` stands for (an adapter directory, or a LoRA run) into a model directory at `out`. */
export function mergeAdapter(path: string, out: string, o: MergeOptions = {}): MergeResult {
  const loaded = loadModel(path);
  const a = loaded.model.adapter;
  if (!a) throw new NrtError("holds a whole model, not a LoRA adapter: there is nothing to merge", loaded.dir);
  const merged = loaded.model.merged();
  const dtype = o.dtype ?? loaded.dtype ?? "F32";
  saveModelDir(
    out,
    merged,
    { ...loaded.tokenizerFiles, [TOKENIZER_FILE]: loaded.tokenizerJson },
    {
      dtype,
      ...(o.maxShardBytes !== undefined && { maxShardBytes: o.maxShardBytes }),
    },
  );
  return {
    base: a.base ?? "",
    rank: a.settings.rank,
    alpha: a.settings.alpha,
    targets: a.settings.targets,
    params: merged.numParams,
    dtype,
  };
}
