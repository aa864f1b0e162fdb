/**
 * A small GGUF reader (the layout is in gguf.ts): metadata, tensor infos, and F32/F16 tensors as float32. Used to
 * check what `exportGguf` wrote, and by `modelFromGguf` to load a llama GGUF back into an nrt Model.
 */
import { readFileSync } from "node:fs";
import { NrtError } from "../errors.js";
import { decodeF16, decodeF32 } from "../io/_dtypes.js";
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GgmlType, GgufType } from "./gguf.js";

export type GgufMetaValue = number | bigint | boolean | string | GgufMetaValue[];

/** One tensor info; `shape` is row-major (GGUF's ne reversed), `offset` is absolute in the file. */
export interface GgufTensor {
  name: string;
  shape: number[];
  type: number;
  offset: number;
  bytes: number;
}

export interface GgufFile {
  version: number;
  metadata: Map<string, GgufMetaValue>;
  tensors: Map<string, GgufTensor>;
  /** the whole file */
  data: Uint8Array;
}

const TYPE_SIZE: Record<number, number> = { [GgmlType.F32]: 4, [GgmlType.F16]: 2 };
const SCALAR_SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

/** Parses a GGUF v2/v3 file held in memory. F32 and F16 tensors only. */
export function parseGguf(data: Uint8Array, where: string): GgufFile {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = 0;
  const need = (n: number) => {
    if (at + n > data.length) throw new NrtError(`file ends at byte ${data.length}, inside the header`, where);
  };
  const u32 = () => {
    need(4);
    at += 4;
    return dv.getUint32(at - 4, true);
  };
  const u64 = () => {
    need(8);
    const v = dv.getBigUint64(at, true);
    at += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new NrtError(`size ${v} at byte ${at - 8} is too large`, where);
    return Number(v);
  };
  const str = () => {
    const n = u64();
    need(n);
    at += n;
    return new TextDecoder().decode(data.subarray(at - n, at));
  };
  const scalar = (t: number): GgufMetaValue => {
    if (t === GgufType.str) return str();
    const size = SCALAR_SIZE[t];
    if (size === undefined) throw new NrtError(`unknown metadata type ${t} at byte ${at - 4}`, where);
    need(size);
    const p = at;
    at += size;
    switch (t) {
      case GgufType.u8:
        return dv.getUint8(p);
      case GgufType.i8:
        return dv.getInt8(p);
      case GgufType.u16:
        return dv.getUint16(p, true);
      case GgufType.i16:
        return dv.getInt16(p, true);
      case GgufType.u32:
        return dv.getUint32(p, true);
      case GgufType.i32:
        return dv.getInt32(p, true);
      case GgufType.f32:
        return dv.getFloat32(p, true);
      case GgufType.bool:
        return dv.getUint8(p) !== 0;
      case GgufType.u64:
        return dv.getBigUint64(p, true);
      case GgufType.i64:
        return dv.getBigInt64(p, true);
      default:
        return dv.getFloat64(p, true);
    }
  };
  const value = (t: number): GgufMetaValue => {
    if (t !== GgufType.array) return scalar(t);
    const of = u32();
    const n = u64();
    const out: GgufMetaValue[] = [];
    for (let i = 0; i < n; i++) out.push(value(of));
    return out;
  };

  if (u32() !== GGUF_MAGIC) throw new NrtError("not a GGUF file (bad magic)", where);
  const version = u32();
  if (version !== 2 && version !== 3) throw new NrtError(`GGUF version ${version} (this reader knows 2 and 3)`, where);
  const nTensors = u64();
  const nKv = u64();
  const metadata = new Map<string, GgufMetaValue>();
  for (let i = 0; i < nKv; i++) {
    const key = str();
    metadata.set(key, value(u32()));
  }
  const infos: Omit<GgufTensor, "offset" | "bytes">[] = [];
  const offsets: number[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = str();
    const nd = u32();
    const ne = Array.from({ length: nd }, u64);
    infos.push({ name, shape: ne.reverse(), type: u32() });
    offsets.push(u64());
  }
  const alignment = Number(metadata.get("general.alignment") ?? GGUF_DEFAULT_ALIGNMENT);
  const start = Math.ceil(at / alignment) * alignment;
  const tensors = new Map<string, GgufTensor>();
  infos.forEach((t, i) => {
    const size = TYPE_SIZE[t.type];
    if (size === undefined) throw new NrtError(`${t.name}: ggml type ${t.type} is not F32 or F16`, where);
    const bytes = t.shape.reduce((a, d) => a * d, 1) * size;
    const offset = start + offsets[i];
    if (offsets[i] % alignment !== 0 || offset + bytes > data.length) {
      throw new NrtError(`${t.name}: data at ${offset}..${offset + bytes} is misaligned or past the end`, where);
    }
    tensors.set(t.name, { ...t, offset, bytes });
  });
  return { version, metadata, tensors, data };
}

/** Reads and parses a GGUF file. */
export function readGguf(path: string): GgufFile {
  return parseGguf(readFileSync(path), path);
}

/** A tensor's values as float32 (F16 widened exactly), in row-major order. */
export function ggufTensorF32(file: GgufFile, name: string): Float32Array {
  const t = file.tensors.get(name);
  if (!t) throw new NrtError(`no tensor ${name}`, "gguf");
  const bytes = file.data.subarray(t.offset, t.offset + t.bytes);
  return t.type === GgmlType.F32 ? decodeF32(bytes) : decodeF16(bytes);
}
