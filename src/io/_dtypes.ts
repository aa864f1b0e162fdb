/** Little-endian byte ↔ float32 conversions for the safetensors dtypes nrt reads (F32, F16, BF16). */

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

let f16Table: Float32Array | undefined;

/**
 * IEEE 754 half → float32 for all 65536 bit patterns, built once (256 KiB). With sign s, exponent e (5 bits),
 * mantissa m (10 bits): e = 0 → (−1)^s·m·2^−24; e = 31 → ±∞ (m = 0) or NaN; else (−1)^s·(1024 + m)·2^(e−25).
 */
function halfTable(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const s = h & 0x8000 ? -1 : 1;
      const e = (h >> 10) & 0x1f;
      const m = h & 0x3ff;
      f16Table[h] =
        e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? Number.NaN : s * Infinity) : s * (1024 + m) * 2 ** (e - 25);
    }
  }
  return f16Table;
}

/** float32 value of one IEEE half bit pattern (exact). */
export function f16ToF32(bits: number): number {
  return halfTable()[bits & 0xffff];
}

/** Little-endian float32 bytes → a new Float32Array, or into `out` (copied; any alignment). */
export function decodeF32(bytes: Uint8Array, out: Float32Array = new Float32Array(bytes.length >>> 2)): Float32Array {
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes);
  } else {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(4 * i, true);
  }
  return out;
}

/** Little-endian IEEE half bytes → float32, new or into `out` (exact: every half is a float32). */
export function decodeF16(bytes: Uint8Array, out: Float32Array = new Float32Array(bytes.length >>> 1)): Float32Array {
  const table = halfTable();
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = table[dv.getUint16(2 * i, true)];
  return out;
}

/** Little-endian bfloat16 bytes → float32: a bfloat16 is the top 16 bits of a float32, so bits32 = bits16 << 16. */
export function decodeBF16(bytes: Uint8Array, out: Float32Array = new Float32Array(bytes.length >>> 1)): Float32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < out.length; i++) bits[i] = dv.getUint16(2 * i, true) << 16;
  return out;
}

/** The little-endian bytes of `data`: a view on little-endian hosts (no copy), a swapped copy otherwise. */
export function f32Bytes(data: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.byteLength);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) dv.setFloat32(4 * i, data[i], true);
  return out;
}

/**
 * float32 → little-endian bfloat16 bytes, rounding to nearest, ties to even (as torch's `.to(torch.bfloat16)`):
 * the top 16 bits of the float32 plus the rounding of the 16 dropped ones; NaN stays a (quiet) NaN.
 */
export function bf16Bytes(data: Float32Array): Uint8Array {
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const out = new Uint8Array(2 * data.length);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) {
    const b = bits[i];
    const top = (b & 0x7fffffff) > 0x7f800000 ? (b >>> 16) | 0x40 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16; // NaN : rounded
    dv.setUint16(2 * i, top & 0xffff, true);
  }
  return out;
}
