/**
 * Hugging Face model directories (SPEC §6): `config.json` + `model.safetensors` (+ e.g. `tokenizer.json`),
 * and run directories accepted in their place (SPEC §8). All functions are synchronous.
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { NrtError } from "../errors.js";
import type { ModelConfig } from "../model/config.js";
import { Model } from "../model/model.js";
import { native } from "../model/native.js";
import { type FileData, writeDirAtomic, writeFileAtomic } from "./atomic.js";
import { parseHfConfig, toHfConfig } from "./hf-config.js";
import { readTextLimited } from "./read.js";
import { encodeSafetensors, readSafetensors } from "./safetensors.js";

export const CONFIG_FILE = "config.json";
export const WEIGHTS_FILE = "model.safetensors";
/** with tied embeddings the output matrix is `model.embed_tokens.weight`; a stored copy under this name is ignored */
const LM_HEAD = "lm_head.weight";

/** Loads a model directory, checking every tensor's presence, shape and finiteness; extra tensors are refused. */
export function loadModelDir(dir: string): { model: Model; config: ModelConfig } {
  const config = readConfig(join(dir, CONFIG_FILE));
  const path = join(dir, WEIGHTS_FILE);
  if (!isFile(path)) {
    const sharded = existsSync(join(dir, `${WEIGHTS_FILE}.index.json`))
      ? " (sharded checkpoints are not supported)"
      : "";
    throw new NrtError(`missing ${WEIGHTS_FILE}${sharded}`, path);
  }
  // names and shapes are checked against the parameter table from the header, before any tensor is read (a
  // header may declare a tensor of gigabytes)
  const table = native().paramTable(config);
  const byName = new Map(table.map((p) => [p.name, p]));
  const { tensors } = readSafetensors(path, (header) => {
    for (const name of header.keys())
      if (!byName.has(name) && !(config.tied && name === LM_HEAD))
        throw new NrtError(`unexpected tensor (not part of this ${config.modelType} config)`, `${path}: ${name}`);
    for (const p of table) {
      const shape = header.get(p.name)?.shape;
      if (shape && (shape.length !== p.shape.length || shape.some((d, i) => d !== p.shape[i])))
        throw new NrtError(`expected shape [${p.shape.join(", ")}], found [${shape.join(", ")}]`, `${path}: ${p.name}`);
    }
  });
  for (const p of table) {
    const where = `${path}: ${p.name}`;
    const t = tensors.get(p.name);
    if (!t) throw new NrtError(`missing tensor (expected shape [${p.shape.join(", ")}])`, where);
    checkFinite(t.data, where);
  }
  const model = new Model(config);
  for (const p of table) {
    model.view(p.name).set(tensors.get(p.name)!.data);
    tensors.delete(p.name); // let the converted copy go as soon as it is in the flat buffer
  }
  return { model, config };
}

/**
 * Writes `model` as a model directory, atomically (all or nothing, see `writeDirAtomic`): config.json,
 * model.safetensors (Hugging Face names, F32; no `lm_head.weight` when tied) and `extraFiles` by relative name.
 * Non-finite weights are refused, naming the tensor.
 */
export function saveModelDir(
  dir: string,
  model: Model,
  extraFiles: Readonly<Record<string, string | Uint8Array>> = {},
): void {
  writeDirAtomic(dir, modelDirFiles(dir, model, extraFiles));
}

/**
 * The files of a model directory, by name, as `saveModelDir` writes them (for writers that put a model directory
 * inside a larger one, e.g. `nrt export --format verl-nrt`); `dir` only names the files in errors.
 */
export function modelDirFiles(
  dir: string,
  model: Model,
  extraFiles: Readonly<Record<string, string | Uint8Array>> = {},
): Record<string, FileData> {
  const path = join(dir, WEIGHTS_FILE);
  for (const name of [CONFIG_FILE, WEIGHTS_FILE]) {
    if (Object.hasOwn(extraFiles, name)) throw new NrtError(`extraFiles may not replace ${name}`, dir);
  }
  const tensors = model.table.map((p) => ({ name: p.name, shape: p.shape, data: model.view(p.name) }));
  for (const t of tensors) checkFinite(t.data, `${path}: ${t.name}`);
  return {
    [CONFIG_FILE]: `${JSON.stringify(toHfConfig(model.config), null, 2)}\n`,
    [WEIGHTS_FILE]: encodeSafetensors(tensors, { format: "pt" }, path), // transformers checks format
    ...extraFiles,
  };
}

/**
 * The model directory that `path` stands for (SPEC §8): `path` itself if it has config.json; else a run
 * directory's `final/`; else its latest checkpoint. Convention: `RUN/checkpoints/latest` is a text file holding
 * the name of one subdirectory of `RUN/checkpoints/` (surrounding whitespace ignored), and that subdirectory is a
 * model directory (with whatever training state the trainer keeps beside it). `markLatestCheckpoint` writes it.
 */
export function resolveModelDir(path: string): string {
  isFile(path); // a loop of links is named as such
  if (!existsSync(path)) throw new NrtError("does not exist", path);
  if (isFile(join(path, CONFIG_FILE))) return path;
  const final = join(path, "final");
  if (isFile(join(final, CONFIG_FILE))) return final;
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
  if (!isFile(join(dir, CONFIG_FILE))) throw new NrtError(`names ${name}, but ${dir} has no ${CONFIG_FILE}`, latest);
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

/** Whether `path` is a regular file; a loop of symbolic links or a denied permission is an error naming it. */
function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ELOOP") throw new NrtError("is a loop of symbolic links (ELOOP)", path);
    if (code === "EACCES") throw new NrtError("permission denied (EACCES)", path);
    return false;
  }
}
