/**
 * safetensors (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length N, N bytes of
 * JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}}`, then the data
 * section, which the tensors' byte ranges (relative to its start) cover exactly, without overlap.
 * Everything is checked before any byte is trusted; errors are NrtError naming the file (and the tensor).
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { NrtError } from "../errors.js";
import { bf16Bytes, decodeBF16, decodeF16, decodeF32, f32Bytes } from "./_dtypes.js";
import { writeFileAtomic } from "./atomic.js";
import { f16Bytes } from "./f16.js";

/** The dtypes nrt reads (converting to float32) and writes (converting from float32, rounding to nearest even). */
export type SafetensorsDtype = "F32" | "F16" | "BF16";

const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };
const DECODE: Record<SafetensorsDtype, (b: Uint8Array, out?: Float32Array) => Float32Array> = {
  F32: decodeF32,
  F16: decodeF16,
  BF16: decodeBF16,
};
const ENCODE: Record<SafetensorsDtype, (d: Float32Array) => Uint8Array> = {
  F32: f32Bytes,
  F16: f16Bytes,
  BF16: bf16Bytes,
};

/** Bytes one element of `dtype` takes in a file. */
export function dtypeBytes(dtype: SafetensorsDtype): number {
  return DTYPE_BYTES[dtype];
}
/** the reference implementation's limit on the header size */
const MAX_HEADER_BYTES = 100_000_000;

/** One tensor as read: its data converted to float32; `dtype` is what the file held. */
export interface SafetensorsTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array;
}

/** A parsed file: tensors by name, in data-section order, and the `__metadata__` strings ({} when absent). */
export interface Safetensors {
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

/** A tensor to write: float32 `data` of length product(`shape`). */
export interface TensorToWrite {
  name: string;
  shape: readonly number[];
  data: Float32Array;
}

interface Entry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** Parses a whole safetensors file held in memory; `where` (the file's path) prefixes every error. */
export function parseSafetensors(bytes: Uint8Array, where: string): Safetensors {
  const n = headerLength(bytes.subarray(0, 8), bytes.length, where);
  const { entries, metadata } = parseHeader(bytes.subarray(8, 8 + n), bytes.length - 8 - n, where);
  const tensors = new Map<string, SafetensorsTensor>();
  const data = 8 + n;
  for (const e of entries) tensors.set(e.name, decode(e, bytes.subarray(data + e.begin, data + e.end)));
  return { tensors, metadata };
}

/** What a reader may check of the tensors from the header alone, before any of their bytes are read. */
export type TensorCheck = (header: ReadonlyMap<string, { dtype: SafetensorsDtype; shape: readonly number[] }>) => void;

/**
 * Where a reader wants a tensor's float32 values: a buffer of its element count (e.g. a view of a model's flat
 * parameters, so that loading holds one copy of the weights), or undefined for a new one.
 */
export type TensorDest = (name: string) => Float32Array | undefined;

/**
 * Reads and checks a safetensors file, reading the header first and then one tensor at a time. `check` sees every
 * tensor's name and shape before any data is read (so a header declaring a huge tensor is refused, not allocated);
 * `dest` may give each tensor the buffer to decode into.
 */
export function readSafetensors(path: string, check?: TensorCheck, dest?: TensorDest): Safetensors {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw new NrtError(`cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, path);
  }
  try {
    const size = fstatSync(fd).size;
    const n = headerLength(readAt(fd, 0, Math.min(8, size), path), size, path);
    const { entries, metadata } = parseHeader(readAt(fd, 8, n, path), size - 8 - n, path);
    check?.(new Map(entries.map((e) => [e.name, { dtype: e.dtype, shape: e.shape }])));
    const tensors = new Map<string, SafetensorsTensor>();
    for (const e of entries) {
      const where = `${path}: ${e.name}`;
      const out = dest?.(e.name);
      const into = out && out.length === e.shape.reduce((a, d) => a * d, 1) ? out : undefined;
      tensors.set(e.name, decode(e, readAt(fd, 8 + n + e.begin, e.end - e.begin, where), where, into));
    }
    return { tensors, metadata };
  } finally {
    closeSync(fd);
  }
}

/**
 * A safetensors file as byte chunks (header, then each tensor's bytes; for F32 on little-endian hosts these are
 * views of `data`, not copies): in `dtype` (F32 by default), names sorted, header space-padded to a multiple of 8
 * bytes as Hugging Face does.
 */
export function encodeSafetensors(
  tensors: readonly TensorToWrite[],
  metadata: Readonly<Record<string, string>> = {},
  where = "safetensors",
  dtype: SafetensorsDtype = "F32",
): Uint8Array[] {
  const size = DTYPE_BYTES[dtype];
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = Object.create(null); // a tensor may be named "__proto__"
  if (Object.keys(metadata).length > 0) header.__metadata__ = { ...metadata };
  let offset = 0;
  for (const t of sorted) {
    const w = `${where}: ${t.name}`;
    if (t.name === "__metadata__" || Object.hasOwn(header, t.name)) throw new NrtError("duplicate or reserved name", w);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new NrtError(`bad shape [${t.shape}]`, w);
    const numel = t.shape.reduce((a, d) => a * d, 1);
    if (numel !== t.data.length)
      throw new NrtError(`shape [${t.shape}] needs ${numel} values, got ${t.data.length}`, w);
    header[t.name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + size * numel] };
    offset += size * numel;
  }
  const json = JSON.stringify(header);
  const padded = json + " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(padded);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  return [len, headerBytes, ...sorted.map((t) => ENCODE[dtype](t.data))];
}

/** Writes tensors as an F32 safetensors file, atomically (see `encodeSafetensors` for the layout). */
export function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  metadata?: Readonly<Record<string, string>>,
): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata, path));
}

/** The header length N from the first 8 bytes, checked against the file size. */
function headerLength(first8: Uint8Array, fileSize: number, where: string): number {
  if (first8.length < 8) throw new NrtError(`file is ${fileSize} bytes, too short to hold the header length`, where);
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(fileSize - 8)) {
    throw new NrtError(
      `header length ${n} exceeds the ${fileSize - 8} bytes after it (truncated or not safetensors)`,
      where,
    );
  }
  if (n > BigInt(MAX_HEADER_BYTES)) throw new NrtError(`header length ${n} exceeds ${MAX_HEADER_BYTES} bytes`, where);
  return Number(n);
}

function parseHeader(
  bytes: Uint8Array,
  dataLen: number,
  where: string,
): { entries: Entry[]; metadata: Record<string, string> } {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw new NrtError(`header is not valid UTF-8 JSON (${(e as Error).message})`, where);
  }
  if (!isObject(json)) throw new NrtError("header is not a JSON object", where);
  let metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, v] of Object.entries(json)) {
    if (name === "__metadata__") metadata = parseMetadata(v, `${where}: __metadata__`);
    else entries.push(parseEntry(name, v, dataLen, `${where}: ${name}`));
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev = "";
  for (const e of entries) {
    if (e.begin < pos) throw new NrtError(`data_offsets overlap those of ${prev}`, `${where}: ${e.name}`);
    if (e.begin > pos) throw new NrtError(`bytes [${pos}, ${e.begin}) of the data section belong to no tensor`, where);
    pos = e.end;
    prev = e.name;
  }
  if (pos !== dataLen) throw new NrtError(`the data section has ${dataLen} bytes but the tensors cover ${pos}`, where);
  return { entries, metadata };
}

function parseMetadata(v: unknown, where: string): Record<string, string> {
  if (v === null) return {};
  if (!isObject(v) || !Object.values(v).every((s) => typeof s === "string")) {
    throw new NrtError("must be an object of strings", where);
  }
  return { ...(v as Record<string, string>) };
}

function parseEntry(name: string, v: unknown, dataLen: number, where: string): Entry {
  if (!isObject(v)) throw new NrtError("header entry is not an object", where);
  const { dtype, shape, data_offsets: off } = v;
  if (typeof dtype !== "string" || !Object.hasOwn(DTYPE_BYTES, dtype)) {
    throw new NrtError(`unsupported dtype ${JSON.stringify(dtype)} (nrt reads F32, F16 and BF16)`, where);
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    throw new NrtError(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`, where);
  }
  let numel = 1;
  for (const d of shape) numel *= d;
  if (!Number.isSafeInteger(numel)) throw new NrtError(`shape [${shape}] is too large`, where);
  if (!Array.isArray(off) || off.length !== 2 || !off.every(isCount) || off[0] > off[1]) {
    throw new NrtError(`data_offsets ${JSON.stringify(off)} is not [begin, end] with 0 ≤ begin ≤ end`, where);
  }
  const [begin, end] = off as [number, number];
  if (end > dataLen) {
    throw new NrtError(`data_offsets [${begin}, ${end}] lie outside the data section (${dataLen} bytes)`, where);
  }
  const need = numel * DTYPE_BYTES[dtype as SafetensorsDtype];
  if (end - begin !== need) {
    throw new NrtError(`data_offsets span ${end - begin} bytes but ${dtype} [${shape}] needs ${need}`, where);
  }
  return { name, dtype: dtype as SafetensorsDtype, shape: shape as number[], begin, end };
}

function decode(e: Entry, bytes: Uint8Array, where = e.name, into?: Float32Array): SafetensorsTensor {
  const data = into ? DECODE[e.dtype](bytes, into) : allocating(() => DECODE[e.dtype](bytes), bytes.length * 2, where);
  return { dtype: e.dtype, shape: e.shape, data };
}

/** `make()`, with a failed allocation (RangeError) turned into an error naming `where` and the size. */
function allocating<T>(make: () => T, bytes: number, where: string): T {
  try {
    return make();
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new NrtError(`cannot allocate ${(bytes / 1024 ** 3).toFixed(1)} GB for this tensor (${e.message})`, where);
  }
}

/** `length` bytes at `position`, all of them (a file that shrank while being read is reported as truncated). */
function readAt(fd: number, position: number, length: number, where: string): Uint8Array {
  const out = allocating(() => new Uint8Array(length), length, where);
  for (let got = 0; got < length; ) {
    const n = readSync(fd, out, got, Math.min(length - got, 1 << 30), position + got);
    if (n === 0) throw new NrtError(`truncated: expected ${length} bytes at offset ${position}`, where);
    got += n;
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isCount(d: unknown): d is number {
  return Number.isSafeInteger(d) && (d as number) >= 0;
}
