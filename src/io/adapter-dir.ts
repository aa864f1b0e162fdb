/**
 * PEFT adapter directories: `adapter_config.json` + `adapter_model.safetensors`, as `PeftModel.save_pretrained`
 * writes a LoRA adapter and `PeftModel.from_pretrained` loads one (peft/tuners/lora/config.py for the keys,
 * peft/utils/save_and_load.py:get_peft_model_state_dict for the tensor names, which drop the adapter's name:
 * `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`).
 */
import { isAbsolute, join, resolve } from "node:path";
import { NrtError } from "../errors.js";
import type { ModelConfig } from "../model/config.js";
import { isLoraTarget, LORA_TARGETS, LoraAdapter, type LoraSettings, type LoraTarget } from "../model/lora.js";
import type { FileData } from "./atomic.js";
import { isFile } from "./is-file.js";
import { readTextLimited } from "./read.js";
import { encodeSafetensors, readSafetensors } from "./safetensors.js";

export const ADAPTER_CONFIG_FILE = "adapter_config.json";
export const ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors";

/**
 * adapter_config.json for `a`: the keys PEFT's LoraConfig reads, with what nrt's adapters are (no dropout at
 * inference, no bias, no rsLoRA/DoRA, every layer, nothing saved besides the adapter).
 */
export function adapterConfig(a: LoraAdapter): Record<string, unknown> {
  return {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: a.base,
    revision: null,
    inference_mode: true,
    r: a.settings.rank,
    lora_alpha: a.settings.alpha,
    lora_dropout: 0,
    target_modules: [...a.settings.targets],
    bias: "none",
    fan_in_fan_out: false,
    use_rslora: false,
    use_dora: false,
    init_lora_weights: true,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
  };
}

/** The files of an adapter directory by name (float32 tensors, PEFT's names) plus `extraFiles`. */
export function adapterDirFiles(
  dir: string,
  a: LoraAdapter,
  extraFiles: Readonly<Record<string, string | Uint8Array>> = {},
): Record<string, FileData> {
  for (const name of [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE])
    if (Object.hasOwn(extraFiles, name)) throw new NrtError(`extraFiles may not replace ${name}`, dir);
  const where = join(dir, ADAPTER_WEIGHTS_FILE);
  const tensors = a.table.map((p) => ({ name: p.name, shape: p.shape, data: a.view(p.name) }));
  for (const t of tensors)
    for (let i = 0; i < t.data.length; i++)
      if (!Number.isFinite(t.data[i]))
        throw new NrtError(`element ${i} is ${t.data[i]} (weights must be finite)`, `${where}: ${t.name}`);
  return {
    [ADAPTER_CONFIG_FILE]: `${JSON.stringify(adapterConfig(a), null, 2)}\n`,
    [ADAPTER_WEIGHTS_FILE]: Buffer.concat(encodeSafetensors(tensors, { format: "pt" }, where)),
    ...extraFiles,
  };
}

/** What adapter_config.json says: the adapter's shape and its base's name or path. */
export interface AdapterConfig {
  settings: LoraSettings;
  base: string;
}

/**
 * Reads and checks `dir`/adapter_config.json: a LoRA adapter nrt can compute (target_modules among the seven
 * projections, no bias, DoRA, rsLoRA, per-layer patterns or extra saved modules), naming the key that is not.
 */
export function readAdapterConfig(dir: string): AdapterConfig {
  const path = join(dir, ADAPTER_CONFIG_FILE);
  let json: unknown;
  try {
    json = JSON.parse(readTextLimited(path, ADAPTER_CONFIG_FILE));
  } catch (e) {
    if (e instanceof NrtError) throw e;
    throw new NrtError(`not valid JSON (${(e as Error).message})`, path);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new NrtError("not a JSON object", path);
  const o = json as Record<string, unknown>;
  const bad = (key: string, why: string): never => {
    throw new NrtError(`${key}: ${why}, got ${JSON.stringify(o[key])}`, path);
  };
  if (o.peft_type !== "LORA") bad("peft_type", 'nrt reads LoRA adapters ("LORA")');
  const r = o.r;
  if (typeof r !== "number" || !Number.isInteger(r) || r < 1) bad("r", "must be an integer >= 1");
  const alpha = o.lora_alpha ?? 8; // PEFT's default
  if (typeof alpha !== "number" || !(alpha > 0)) bad("lora_alpha", "must be a number > 0");
  const tm = o.target_modules;
  if (!Array.isArray(tm) || tm.length === 0 || !tm.every((t) => typeof t === "string"))
    bad("target_modules", "must be a list of projection names (a regular expression is not supported)");
  const unknown = (tm as string[]).find((t) => !isLoraTarget(t));
  if (unknown !== undefined) bad("target_modules", `"${unknown}" is not one of ${LORA_TARGETS.join(", ")}`);
  if ((o.bias ?? "none") !== "none") bad("bias", 'nrt adapters have no bias terms ("none")');
  for (const key of ["use_dora", "use_rslora", "fan_in_fan_out"]) if (o[key]) bad(key, "is not supported (false)");
  for (const key of ["layers_to_transform", "layers_pattern", "modules_to_save"])
    if (o[key] != null && !(Array.isArray(o[key]) && o[key].length === 0)) bad(key, "is not supported (null)");
  for (const key of ["rank_pattern", "alpha_pattern"]) {
    const v = o[key];
    if (v != null && (typeof v !== "object" || Object.keys(v as object).length > 0))
      bad(key, "per-module ranks are not supported ({})");
  }
  const base = o.base_model_name_or_path;
  if (typeof base !== "string" || base === "") bad("base_model_name_or_path", "must name the base model's directory");
  const list = tm as LoraTarget[];
  return {
    settings: { rank: r as number, alpha: alpha as number, targets: LORA_TARGETS.filter((t) => list.includes(t)) },
    base: base as string,
  };
}

/**
 * The base model directory adapter_config.json names: an absolute path, or one relative to the adapter directory
 * or to the working directory. A hub name is refused (nrt reads models from disk only).
 */
export function resolveBase(base: string, dir: string): string {
  const tries = isAbsolute(base) ? [base] : [resolve(dir, base), resolve(base)];
  for (const p of tries) if (isFile(join(p, "config.json")) || isFile(join(p, ADAPTER_CONFIG_FILE))) return p;
  for (const p of tries)
    if (isFile(join(p, "final", "config.json")) || isFile(join(p, "checkpoints", "latest"))) return p;
  throw new NrtError(
    `base_model_name_or_path: ${JSON.stringify(base)} is not a model directory here (nrt needs the base model on disk; edit the path to where it is)`,
    join(dir, ADAPTER_CONFIG_FILE),
  );
}

/** The adapter in `dir` for a base of `config`: every tensor present, with the shape the base gives it, finite. */
export function readAdapter(dir: string, config: ModelConfig, settings: LoraSettings): LoraAdapter {
  const path = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!isFile(path)) throw new NrtError(`missing ${ADAPTER_WEIGHTS_FILE}`, path);
  const a = new LoraAdapter(config, settings);
  const byName = new Map(a.table.map((p) => [p.name, p]));
  const { tensors } = readSafetensors(path, (header) => {
    for (const [name, { shape }] of header) {
      const p = byName.get(name);
      if (!p)
        throw new NrtError("unexpected tensor (not an adapter tensor of this base and config)", `${path}: ${name}`);
      if (shape.length !== p.shape.length || shape.some((d, k) => d !== p.shape[k]))
        throw new NrtError(`expected shape [${p.shape.join(", ")}], found [${shape.join(", ")}]`, `${path}: ${name}`);
    }
  });
  for (const p of a.table) {
    const t = tensors.get(p.name);
    if (!t) throw new NrtError(`missing tensor (expected shape [${p.shape.join(", ")}])`, `${path}: ${p.name}`);
    for (let i = 0; i < t.data.length; i++)
      if (!Number.isFinite(t.data[i]))
        throw new NrtError(`element ${i} is ${t.data[i]} (weights must be finite)`, `${path}: ${p.name}`);
    a.view(p.name).set(t.data);
  }
  return a;
}
