/**
 * Hugging Face model directories (SPEC §6): `config.json` + `model.safetensors` or its shards (+ e.g.
 * `tokenizer.json`), and run directories accepted in their place (SPEC §8). All functions are synchronous.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { NrtError } from "../errors.js";
import type { ModelConfig } from "../model/config.js";
import { Model } from "../model/model.js";
import { native } from "../model/native.js";
import { ADAPTER_CONFIG_FILE, adapterDirFiles } from "./adapter-dir.js";
import { type FileData, writeDirAtomic, writeFileAtomic } from "./atomic.js";
import { parseHfConfig, toHfConfig } from "./hf-config.js";
import { isFile } from "./is-file.js";
import { readTextLimited } from "./read.js";
import type { SafetensorsDtype } from "./safetensors.js";
import { DEFAULT_MAX_SHARD_BYTES, KNOWN_BUFFERS, readWeights, WEIGHTS_FILE, weightFiles } from "./weights.js";

export { WEIGHTS_FILE };
export const CONFIG_FILE = "config.json";

/** How the weights of a model directory are written: dtype (F32 unless told) and the shard limit in bytes. */
export interface SaveOptions {
  dtype?: SafetensorsDtype;
  maxShardBytes?: number;
}

/** config.json's `torch_dtype` of each stored dtype. */
export const TORCH_DTYPE: Record<SafetensorsDtype, string> = { F32: "float32", BF16: "bfloat16", F16: "float16" };
/** with tied embeddings the output matrix is `model.embed_tokens.weight`; a stored copy under this name is ignored */
const LM_HEAD = "lm_head.weight";

/**
 * Loads a model directory (one safetensors file or shards), checking every tensor's presence, shape and
 * finiteness; extra tensors are refused, known non-parameter buffers (`rotary_emb.inv_freq`) skipped and listed.
 * `dtype` is what most of the stored elements were (outputs keep it by default).
 */
export function loadModelDir(dir: string): {
  model: Model;
  config: ModelConfig;
  dtype: SafetensorsDtype;
  sharded: boolean;
  skipped: string[];
} {
  const config = readConfig(join(dir, CONFIG_FILE));
  // names and shapes are checked against the parameter table from each file's header, before any tensor is read (a
  // header may declare a tensor of gigabytes)
  const table = native().paramTable(config);
  const byName = new Map(table.map((p) => [p.name, p]));
  // each parameter is decoded straight into the model's flat buffer (one copy of the weights in memory), allocated
  // once the first file's header has passed the check (a config claiming a huge model allocates nothing)
  let allocated: Model | undefined;
  const modelOf = () => {
    allocated ??= new Model(config);
    return allocated;
  };
  const into = (name: string) => (byName.has(name) ? modelOf().view(name) : undefined);
  const { tensors, fileOf, dtype, sharded, skipped } = readWeights(
    dir,
    (header, path) => {
      for (const name of header.keys())
        if (!byName.has(name) && !(config.tied && name === LM_HEAD) && !KNOWN_BUFFERS.test(name))
          throw new NrtError(`unexpected tensor (not part of this ${config.modelType} config)`, `${path}: ${name}`);
      for (const p of table) {
        const shape = header.get(p.name)?.shape;
        if (shape && (shape.length !== p.shape.length || shape.some((d, k) => d !== p.shape[k])))
          throw new NrtError(
            `expected shape [${p.shape.join(", ")}], found [${shape.join(", ")}]`,
            `${path}: ${p.name}`,
          );
      }
    },
    into,
  );
  const at = (name: string) => `${fileOf.get(name) ?? join(dir, WEIGHTS_FILE)}: ${name}`;
  for (const p of table) {
    const where = at(p.name);
    const t = tensors.get(p.name);
    if (!t) throw new NrtError(`missing tensor (expected shape [${p.shape.join(", ")}])`, where);
    checkFinite(t.data, where);
  }
  const model = modelOf();
  for (const p of table) {
    const data = tensors.get(p.name)!.data;
    if (data.buffer !== model.params.buffer) model.view(p.name).set(data);
    tensors.delete(p.name);
  }
  return { model, config, dtype, sharded, skipped };
}

/**
 * Writes `model` as a model directory, atomically (all or nothing, see `writeDirAtomic`): config.json,
 * model.safetensors (Hugging Face names, F32; no `lm_head.weight` when tied) and `extraFiles` by relative name —
 * or, for a model with a LoRA adapter, the adapter directory PEFT writes (src/io/adapter-dir.ts), the frozen base
 * staying where adapter_config.json's base_model_name_or_path says. Non-finite weights are refused, naming the
 * tensor.
 */
export function saveModelDir(
  dir: string,
  model: Model,
  extraFiles: Readonly<Record<string, string | Uint8Array>> = {},
  save: SaveOptions = {},
): void {
  writeDirAtomic(dir, modelDirFiles(dir, model, extraFiles, save));
}

/**
 * The files of a model directory, by name, as `saveModelDir` writes them (for writers that put a model directory
 * inside a larger one, e.g. `nrt export --format verl-nrt`); `dir` only names the files in errors.
 */
export function modelDirFiles(
  dir: string,
  model: Model,
  extraFiles: Readonly<Record<string, string | Uint8Array>> = {},
  { dtype = "F32", maxShardBytes = DEFAULT_MAX_SHARD_BYTES }: SaveOptions = {},
): Record<string, FileData> {
  if (model.adapter) return adapterDirFiles(dir, model.adapter, extraFiles);
  const path = join(dir, WEIGHTS_FILE);
  const tensors = model.table.map((p) => ({ name: p.name, shape: p.shape, data: model.view(p.name) }));
  for (const t of tensors) checkFinite(t.data, `${path}: ${t.name}`);
  const weights = weightFiles(tensors, dtype, maxShardBytes, dir);
  for (const name of [CONFIG_FILE, ...Object.keys(weights)]) {
    if (Object.hasOwn(extraFiles, name)) throw new NrtError(`extraFiles may not replace ${name}`, dir);
  }
  const config = { ...toHfConfig(model.config), torch_dtype: TORCH_DTYPE[dtype] };
  return { [CONFIG_FILE]: `${JSON.stringify(config, null, 2)}\n`, ...weights, ...extraFiles };
}

/** `dir` holds a model: config.json, or a PEFT adapter's adapter_config.json (over a base elsewhere). */
export function isModelDir(dir: string): boolean {
  return isFile(join(dir, CONFIG_FILE)) || isFile(join(dir, ADAPTER_CONFIG_FILE));
}

/** `dir` holds a PEFT adapter and not a whole model. */
export function isAdapterDir(dir: string): boolean {
  return !isFile(join(dir, CONFIG_FILE)) && isFile(join(dir, ADAPTER_CONFIG_FILE));
}

/**
 * The model directory that `path` stands for (SPEC §8): `path` itself if it has config.json (or is an adapter
 * directory, adapter_config.json); else a run directory's `final/`; else its latest checkpoint. Convention: `RUN/checkpoints/latest` is a text file holding
 * the name of one subdirectory of `RUN/checkpoints/` (surrounding whitespace ignored), and that subdirectory is a
 * model directory (with whatever training state the trainer keeps beside it). `markLatestCheckpoint` writes it.
 */
export function resolveModelDir(path: string): string {
  isFile(path); // a loop of links is named as such
  if (!existsSync(path)) throw new NrtError("does not exist", path);
  if (isModelDir(path)) return path;
  const final = join(path, "final");
  if (isModelDir(final)) return final;
  const latest = join(path, "checkpoints", "latest");
  if (!isFile(latest)) {
    throw new NrtError(
      `no ${CONFIG_FILE}, final/${CONFIG_FILE} or checkpoints/latest: not a model or run directory`,
      path,
    );
  }
  const name = readTextLimited(latest, "checkpoints/latest").trim();
  if (name === "" || name === "." || name === ".." || /[\\/]/.test(name)) {
    throw new NrtError(`holds ${JSON.stringify(name)}, not the name of a subdirectory of checkpoints/`, latest);
  }
  const dir = join(path, "checkpoints", name);
  if (!isModelDir(dir)) throw new NrtError(`names ${name}, but ${dir} has no ${CONFIG_FILE}`, latest);
  return dir;
}

/** Points `RUN/checkpoints/latest` at the checkpoint subdirectory `name` (atomically; see `resolveModelDir`). */
export function markLatestCheckpoint(runDir: string, name: string): void {
  if (name === "" || name === "." || name === ".." || /[\\/\s]/.test(name)) {
    throw new NrtError(`checkpoint name ${JSON.stringify(name)} is not a plain directory name`, runDir);
  }
  mkdirSync(join(runDir, "checkpoints"), { recursive: true });
  writeFileAtomic(join(runDir, "checkpoints", "latest"), `${name}\n`);
}

function readConfig(path: string): ModelConfig {
  if (!isFile(path)) throw new NrtError(`missing ${CONFIG_FILE}`, path);
  const text = readTextLimited(path, CONFIG_FILE);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new NrtError(`not valid JSON (${(e as Error).message})`, path);
  }
  return parseHfConfig(json, path);
}

function checkFinite(data: Float32Array, where: string): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new NrtError(`element ${i} is ${data[i]} (weights must be finite)`, where);
  }
}
