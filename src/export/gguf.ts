/**
 * GGUF v3 (ggml's file format, read by llama.cpp), little-endian:
 *
 *   magic "GGUF" · u32 version = 3 · u64 tensor_count · u64 kv_count
 *   kv_count × (string key · u32 value_type · value)            string = u64 byte length · UTF-8 bytes
 *   tensor_count × (string name · u32 n_dims · u64 ne[n_dims] · u32 ggml_type · u64 offset)
 *   zero padding to `general.alignment` (32 by default), then the tensors' data, each at its offset (relative to
 *   the start of the data, a multiple of the alignment), zero-padded between tensors
 *
 * `ne` lists dimensions fastest-first: the reverse of a row-major shape ((out, in) → [in, out]).
 * The writer is a state machine, as gguf-py's is: header → key/values → tensor infos → tensor data, each section
 * complete before the next, and anything out of order is refused.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { Bytes } from "./_gguf-bytes.js";

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** llama.cpp's GGML_MAX_NAME: tensor names are at most 63 bytes */
export const GGML_MAX_NAME = 64;

/** GGUF metadata value types (gguf_type). */
export const GgufType = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  str: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;
export type GgufScalarType = Exclude<keyof typeof GgufType, "array">;
/** a metadata scalar: numbers (bigint for 64-bit integers too), booleans, strings */
export type GgufScalar = number | bigint | boolean | string;

/** One metadata value with its GGUF type. */
export type GgufValue =
  | { type: GgufScalarType; value: GgufScalar }
  | { type: "array"; of: GgufScalarType; value: readonly GgufScalar[] };

/** Constructors for typed metadata values: `gv.u32(4)`, `gv.arr("str", tokens)`. */
export const gv = {
  u32: (value: number): GgufValue => ({ type: "u32", value }),
  i32: (value: number): GgufValue => ({ type: "i32", value }),
  f32: (value: number): GgufValue => ({ type: "f32", value }),
  bool: (value: boolean): GgufValue => ({ type: "bool", value }),
  str: (value: string): GgufValue => ({ type: "str", value }),
  arr: (of: GgufScalarType, value: readonly GgufScalar[]): GgufValue => ({ type: "array", of, value }),
};

/** ggml tensor types nrt writes, with their element sizes in bytes. */
export const GgmlType = { F32: 0, F16: 1 } as const;
export type GgmlTypeName = keyof typeof GgmlType;
export const GGML_TYPE_SIZE: Record<GgmlTypeName, number> = { F32: 4, F16: 2 };

type State = "empty" | "header" | "kv" | "tensor-info" | "data" | "closed";

interface PendingTensor {
  name: string;
  bytes: number;
}

/**
 * Streams one GGUF file: write the header, then exactly the announced key/values, then the tensor infos, then
 * each tensor's bytes in the order of the infos; `close()` checks that everything announced was written and
 * renames the temporary file into place (so a failed export leaves no partial file; `abort()` cleans up).
 */
export class GgufWriter {
  readonly path: string;
  readonly alignment: number;
  private state: State = "empty";
  private readonly tmp: string;
  private fd: number | null;
  private pos = 0;
  private tensorCount = 0;
  private kvCount = 0;
  private readonly keys = new Set<string>();
  private readonly infos: PendingTensor[] = [];
  private dataOffset = 0;
  private nextData = 0;

  constructor(path: string, alignment = GGUF_DEFAULT_ALIGNMENT) {
    if (!Number.isInteger(alignment) || alignment < 1 || alignment % 8 !== 0) {
      throw new Error(`GGUF alignment must be a positive multiple of 8, got ${alignment}`);
    }
    this.path = path;
    this.alignment = alignment;
    this.tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Date.now()}`);
    this.fd = openSync(this.tmp, "wx");
  }

  /** Section 1: magic, version and the counts of what follows. */
  writeHeader(tensorCount: number, kvCount: number): void {
    this.expect("writeHeader", ["empty"]);
    const b = new Bytes();
    b.u32(GGUF_MAGIC).u32(GGUF_VERSION).u64(tensorCount).u64(kvCount);
    this.write(b.done());
    this.tensorCount = tensorCount;
    this.kvCount = kvCount;
    this.state = "header";
  }

  /** Section 2: one key/value (keys are unique; `general.alignment` must agree with the writer's). */
  writeKv(key: string, v: GgufValue): void {
    this.expect("writeKv", ["header", "kv"]);
    if (this.keys.size === this.kvCount)
      throw new Error(`GGUF writer: the header announced ${this.kvCount} key/values`);
    if (this.keys.has(key)) throw new Error(`GGUF writer: duplicate key ${key}`);
    if (key === "general.alignment" && (v.type !== "u32" || v.value !== this.alignment)) {
      throw new Error(`GGUF writer: general.alignment must be u32 ${this.alignment}`);
    }
    const b = new Bytes().str(key);
    if (v.type === "array") {
      b.u32(GgufType.array).u32(GgufType[v.of]).u64(v.value.length);
      for (const x of v.value) b.scalar(v.of, x);
    } else {
      b.u32(GgufType[v.type]).scalar(v.type, v.value);
    }
    this.write(b.done());
    this.keys.add(key);
    this.state = "kv";
  }

  /** Section 3: a tensor's name, row-major shape (written reversed, as GGUF's ne) and type. */
  writeTensorInfo(name: string, shape: readonly number[], type: GgmlTypeName): void {
    this.expect("writeTensorInfo", ["header", "kv", "tensor-info"]);
    if (this.keys.size !== this.kvCount) {
      throw new Error(`GGUF writer: ${this.keys.size} of the ${this.kvCount} announced key/values written`);
    }
    if (this.infos.length === this.tensorCount)
      throw new Error(`GGUF writer: the header announced ${this.tensorCount} tensors`);
    if (this.infos.some((t) => t.name === name)) throw new Error(`GGUF writer: duplicate tensor ${name}`);
    if (Buffer.byteLength(name) >= GGML_MAX_NAME) throw new Error(`GGUF writer: tensor name ${name} is too long`);
    if (shape.length < 1 || shape.length > 4 || !shape.every((d) => Number.isSafeInteger(d) && d > 0)) {
      throw new Error(`GGUF writer: ${name}: bad shape [${shape.join(", ")}]`);
    }
    const bytes = shape.reduce((a, d) => a * d, 1) * GGML_TYPE_SIZE[type];
    const b = new Bytes().str(name).u32(shape.length);
    for (const d of [...shape].reverse()) b.u64(d);
    b.u32(GgmlType[type]).u64(this.dataOffset);
    this.write(b.done());
    this.infos.push({ name, bytes });
    this.dataOffset = align(this.dataOffset + bytes, this.alignment);
    this.state = "tensor-info";
  }

  /** Section 4: the bytes of the next tensor, in the order of the infos. */
  writeTensorData(name: string, data: Uint8Array): void {
    this.expect("writeTensorData", ["header", "kv", "tensor-info", "data"]);
    if (this.state !== "data") {
      if (this.infos.length !== this.tensorCount || this.keys.size !== this.kvCount) {
        throw new Error(
          `GGUF writer: tensor data before all key/values (${this.keys.size}/${this.kvCount}) and tensor infos (${this.infos.length}/${this.tensorCount})`,
        );
      }
      this.pad(); // the data section starts aligned
      this.state = "data";
    }
    const t = this.infos[this.nextData];
    if (!t) throw new Error(`GGUF writer: all ${this.tensorCount} tensors are already written`);
    if (t.name !== name) throw new Error(`GGUF writer: expected the data of ${t.name}, got ${name}`);
    if (data.length !== t.bytes) throw new Error(`GGUF writer: ${name} needs ${t.bytes} bytes, got ${data.length}`);
    this.write(data);
    this.pad();
    this.nextData++;
  }

  /** Finishes the file: everything announced must have been written. Returns the file size in bytes. */
  close(): number {
    this.expect("close", ["header", "kv", "tensor-info", "data"]);
    if (this.keys.size !== this.kvCount || this.nextData !== this.tensorCount) {
      throw new Error(
        `GGUF writer: closed after ${this.keys.size}/${this.kvCount} key/values and ${this.nextData}/${this.tensorCount} tensors`,
      );
    }
    if (this.tensorCount === 0) this.pad();
    const fd = this.fd!;
    fsyncSync(fd);
    closeSync(fd);
    this.fd = null;
    renameSync(this.tmp, this.path);
    this.state = "closed";
    return this.pos;
  }

  /** Gives up: closes and deletes the temporary file. Safe to call in any state. */
  abort(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    if (this.state !== "closed") rmSync(this.tmp, { force: true });
    this.state = "closed";
  }

  private expect(op: string, states: State[]): void {
    if (!states.includes(this.state)) throw new Error(`GGUF writer: ${op} is out of order (state: ${this.state})`);
  }

  private write(bytes: Uint8Array): void {
    for (let off = 0; off < bytes.length; ) off += writeSync(this.fd!, bytes, off, bytes.length - off);
    this.pos += bytes.length;
  }

  private pad(): void {
    const n = align(this.pos, this.alignment) - this.pos;
    if (n > 0) this.write(new Uint8Array(n));
  }
}

function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}
