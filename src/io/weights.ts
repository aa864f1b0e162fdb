/**
 * The weights of a Hugging Face model directory as they come (SPEC §6): one `model.safetensors`, or shards listed
 * in `model.safetensors.index.json` (`{"metadata": {"total_size": N}, "weight_map": {tensor: shard file}}`), in
 * float32, bfloat16 or float16. Written back the same way: one file, or `model-0000i-of-0000n.safetensors` shards of
 * at most `maxShardBytes` each plus the index, as `save_pretrained` does (a tensor larger than the limit gets a shard
 * of its own).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { NrtError } from "../errors.js";
import type { FileData } from "./atomic.js";
import { isFile } from "./is-file.js";
import {
  dtypeBytes,
  encodeSafetensors,
  readSafetensors,
  type SafetensorsDtype,
  type SafetensorsTensor,
  type TensorCheck,
  type TensorDest,
  type TensorToWrite,
} from "./safetensors.js";

export const WEIGHTS_FILE = "model.safetensors";
export const WEIGHTS_INDEX_FILE = "model.safetensors.index.json";

/** `save_pretrained`'s default shard limit, 5 GB (decimal, as transformers counts it). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

/** PyTorch pickle files a directory may hold instead of safetensors. */
const PICKLE = /^(pytorch_model.*\.bin|.*\.pt|.*\.pth|pytorch_model\.bin\.index\.json)$/;

/** Tensors some checkpoints store that are buffers, not parameters: skipped (RoPE is computed from the config). */
export const KNOWN_BUFFERS = /\.rotary_emb\.inv_freq$/;

/** One file's header as `readSafetensors` hands it to a check: each tensor's stored dtype and shape. */
export type HeaderInfo = Parameters<TensorCheck>[0];

/** What a directory's weights hold: every tensor (float32), the files read, and the dtype most elements had. */
export interface ReadWeights {
  tensors: Map<string, SafetensorsTensor>;
  /** the file(s) the tensors came from, each tensor's by name, for error messages */
  fileOf: Map<string, string>;
  sharded: boolean;
  /** the stored dtype of the largest share of the elements (what outputs keep by default) */
  dtype: SafetensorsDtype;
  /** known non-parameter buffers left out (KNOWN_BUFFERS) */
  skipped: string[];
}

/**
 * Reads `dir`'s weights (single file or shards), refusing pickle-only directories with the reason; `dest` may give
 * tensors the buffers to decode into (see `TensorDest`).
 */
export function readWeights(
  dir: string,
  check?: (header: HeaderInfo, path: string) => void,
  dest?: TensorDest,
): ReadWeights {
  const single = join(dir, WEIGHTS_FILE);
  const index = join(dir, WEIGHTS_INDEX_FILE);
  if (isFile(single)) return collect([single], null, check, dest);
  if (isFile(index)) {
    const map = readIndex(dir, index);
    return collect([...new Set(map.values())], map, check, dest);
  }
  const pickles = listPickles(dir);
  if (pickles.length > 0)
    throw new NrtError(
      `holds PyTorch pickle weights (${pickles.join(", ")}) but no ${WEIGHTS_FILE}: nrt reads safetensors only, because loading a pickle runs whatever code it holds; convert it once where you trust the file, e.g. in Python: AutoModelForCausalLM.from_pretrained(DIR).save_pretrained(DIR, safe_serialization=True)`,
      dir,
    );
  throw new NrtError(`missing ${WEIGHTS_FILE} (or ${WEIGHTS_INDEX_FILE} for a sharded checkpoint)`, single);
}

/** An index's weight_map as tensor → shard path; every shard a plain file beside the index. */
function readIndex(dir: string, index: string): Map<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(index, "utf8"));
  } catch (e) {
    throw new NrtError(`not valid JSON (${(e as Error).message})`, index);
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== "object" || map === null || Array.isArray(map))
    throw new NrtError('"weight_map" must be an object of tensor name → shard file', index);
  const out = new Map<string, string>();
  for (const [name, file] of Object.entries(map)) {
    if (typeof file !== "string" || file === "" || /[\\/]/.test(file) || file === "." || file === "..")
      throw new NrtError(`weight_map["${name}"] must be the name of a file beside the index`, index);
    out.set(name, join(dir, file));
  }
  if (out.size === 0) throw new NrtError('"weight_map" lists no tensor', index);
  for (const p of new Set(out.values())) if (!isFile(p)) throw new NrtError("missing shard (named in the index)", p);
  return out;
}

/**
 * Reads every tensor of `paths`; with an index `map` (sharded), each tensor must sit in the shard the map names and
 * every mapped tensor must be found.
 */
function collect(
  paths: string[],
  map: Map<string, string> | null,
  check?: (header: HeaderInfo, path: string) => void,
  dest?: TensorDest,
): ReadWeights {
  const tensors = new Map<string, SafetensorsTensor>();
  const fileOf = new Map<string, string>();
  const skipped: string[] = [];
  const elements: Record<SafetensorsDtype, number> = { F32: 0, F16: 0, BF16: 0 };
  for (const p of paths) {
    for (const [name, t] of readSafetensors(p, check && ((h) => check(h, p)), dest).tensors) {
      if (map && map.get(name) !== p)
        throw new NrtError(
          map.has(name) ? `the index places this tensor in ${map.get(name)}` : "not listed in the index's weight_map",
          `${p}: ${name}`,
        );
      if (tensors.has(name)) throw new NrtError(`also in ${fileOf.get(name)}`, `${p}: ${name}`);
      if (KNOWN_BUFFERS.test(name)) {
        skipped.push(name);
        continue;
      }
      tensors.set(name, t);
      fileOf.set(name, p);
      elements[t.dtype] += t.data.length;
    }
  }
  if (map)
    for (const [name, p] of map)
      if (!fileOf.has(name) && !skipped.includes(name))
        throw new NrtError("missing tensor (named in the index)", `${p}: ${name}`);
  const dtype = (Object.keys(elements) as SafetensorsDtype[]).reduce(
    (a, b) => (elements[b] > elements[a] ? b : a),
    "F32",
  );
  return { tensors, fileOf, sharded: map !== null, dtype, skipped };
}

/**
 * The weight files of a model directory by name: `model.safetensors` when the tensors take at most
 * `maxShardBytes` in `dtype`, else shards filled in name order (a tensor goes to a new shard when it would push the
 * current one past the limit) and the index with `total_size` and `weight_map`. `where` names errors.
 */
export function weightFiles(
  tensors: readonly TensorToWrite[],
  dtype: SafetensorsDtype,
  maxShardBytes: number,
  where: string,
): Record<string, FileData> {
  if (!(maxShardBytes > 0)) throw new NrtError(`must be a size > 0, got ${maxShardBytes}`, "--max-shard-size");
  const size = dtypeBytes(dtype);
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const bytes = (t: TensorToWrite) => t.data.length * size;
  const total = sorted.reduce((a, t) => a + bytes(t), 0);
  const meta = { format: "pt" }; // transformers checks the format
  if (total <= maxShardBytes)
    return { [WEIGHTS_FILE]: encodeSafetensors(sorted, meta, join(where, WEIGHTS_FILE), dtype) };
  const shards: TensorToWrite[][] = [[]];
  let used = 0;
  for (const t of sorted) {
    if (used > 0 && used + bytes(t) > maxShardBytes) {
      shards.push([]);
      used = 0;
    }
    shards[shards.length - 1].push(t);
    used += bytes(t);
  }
  const n = shards.length;
  const name = (i: number) => `model-${String(i + 1).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.safetensors`;
  const files: Record<string, FileData> = {};
  const weightMap: Record<string, string> = {};
  shards.forEach((ts, i) => {
    files[name(i)] = encodeSafetensors(ts, meta, join(where, name(i)), dtype);
    for (const t of ts) weightMap[t.name] = name(i);
  });
  files[WEIGHTS_INDEX_FILE] =
    `${JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2)}\n`;
  return files;
}

/** "5GB", "500MB", "2GiB", "1000000" → bytes (decimal units as transformers uses them; KiB/MiB/GiB binary). */
export function parseSize(text: string, flag = "--max-shard-size"): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(|B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)\s*$/i.exec(text);
  if (!m)
    throw new NrtError(`must be a size such as 5GB, 500MB or a number of bytes, got ${JSON.stringify(text)}`, flag);
  const unit = m[2].toUpperCase();
  const mult: Record<string, number> = {
    "": 1,
    B: 1,
    KB: 1e3,
    MB: 1e6,
    GB: 1e9,
    TB: 1e12,
    KIB: 2 ** 10,
    MIB: 2 ** 20,
    GIB: 2 ** 30,
    TIB: 2 ** 40,
  };
  const bytes = Math.floor(Number(m[1]) * mult[unit]);
  if (!(bytes > 0)) throw new NrtError(`must be a size > 0, got ${JSON.stringify(text)}`, flag);
  return bytes;
}

function listPickles(dir: string): string[] {
  try {
    return readdirSync(dir).filter((f) => PICKLE.test(f));
  } catch {
    return [];
  }
}
