/** The little-endian byte builder behind GgufWriter's header sections (strings, scalars, checked ranges). */
import type { GgufScalar, GgufScalarType } from "./gguf.js";

/** A growable little-endian byte buffer. */
export class Bytes {
  private buf = new Uint8Array(256);
  private dv = new DataView(this.buf.buffer);
  private n = 0;

  private room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const next = new Uint8Array(Math.max(2 * this.buf.length, this.n + k));
    next.set(this.buf.subarray(0, this.n));
    this.buf = next;
    this.dv = new DataView(next.buffer);
  }

  u32(x: number): this {
    this.room(4);
    this.dv.setUint32(this.n, x, true);
    this.n += 4;
    return this;
  }

  u64(x: number | bigint): this {
    this.room(8);
    this.dv.setBigUint64(this.n, BigInt(x), true);
    this.n += 8;
    return this;
  }

  str(s: string): this {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.room(b.length);
    this.buf.set(b, this.n);
    this.n += b.length;
    return this;
  }

  scalar(type: GgufScalarType, x: GgufScalar): this {
    const num = (): number => {
      if (typeof x !== "number") throw new Error(`GGUF writer: a ${type} value must be a number, got ${typeof x}`);
      return x;
    };
    switch (type) {
      case "str":
        if (typeof x !== "string") throw new Error(`GGUF writer: a str value must be a string, got ${typeof x}`);
        return this.str(x);
      case "bool":
        if (typeof x !== "boolean") throw new Error(`GGUF writer: a bool value must be a boolean, got ${typeof x}`);
        this.room(1);
        this.dv.setUint8(this.n++, x ? 1 : 0);
        return this;
      case "u64":
      case "i64":
        this.room(8);
        if (type === "u64") this.dv.setBigUint64(this.n, BigInt(x as number | bigint), true);
        else this.dv.setBigInt64(this.n, BigInt(x as number | bigint), true);
        this.n += 8;
        return this;
      default: {
        const [size, set, lo, hi] = SETTERS[type];
        const v = num();
        if (lo !== undefined && !(Number.isInteger(v) && v >= lo && v <= hi!)) {
          throw new Error(`GGUF writer: ${v} is not a ${type}`);
        }
        this.room(size);
        set(this.dv, this.n, v);
        this.n += size;
        return this;
      }
    }
  }

  done(): Uint8Array {
    return this.buf.slice(0, this.n);
  }
}

/** size, setter and (integer types) the range of each fixed-size numeric type */
const SETTERS: Record<
  Exclude<GgufScalarType, "str" | "bool" | "u64" | "i64">,
  [number, (dv: DataView, at: number, x: number) => void, number?, number?]
> = {
  u8: [1, (dv, at, x) => dv.setUint8(at, x), 0, 0xff],
  i8: [1, (dv, at, x) => dv.setInt8(at, x), -0x80, 0x7f],
  u16: [2, (dv, at, x) => dv.setUint16(at, x, true), 0, 0xffff],
  i16: [2, (dv, at, x) => dv.setInt16(at, x, true), -0x8000, 0x7fff],
  u32: [4, (dv, at, x) => dv.setUint32(at, x, true), 0, 0xffffffff],
  i32: [4, (dv, at, x) => dv.setInt32(at, x, true), -0x80000000, 0x7fffffff],
  f32: [4, (dv, at, x) => dv.setFloat32(at, x, true)],
  f64: [8, (dv, at, x) => dv.setFloat64(at, x, true)],
};
