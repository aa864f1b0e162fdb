/** float32 → IEEE 754 half, rounding to nearest, ties to even (as numpy's astype(float16) and ggml do). */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * The half bit pattern nearest to `x` (as a float32): sign s, exponent e = E − 127 + 15, mantissa m (23 bits).
 * e ≥ 31 → ±∞; 0 < e < 31 → (e, m >> 13) rounded on the 13 dropped bits (a carry may step into the exponent,
 * up to ∞, which is right); e ≤ 0 → subnormal (1.m · 2^(E−127)) / 2^−24 = (m | 2^23) >> (14 − e), rounded.
 */
export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const shift = 14 - e;
    const full = mant | 0x800000;
    return sign | roundShift(full, shift);
  }
  return sign | (((e << 10) | (mant >>> 13)) + roundBit(mant, 13, mant >>> 13));
}

/** `v >> shift`, rounded to nearest even on the dropped bits. */
function roundShift(v: number, shift: number): number {
  const q = v >>> shift;
  return q + roundBit(v, shift, q);
}

/** 1 when the `shift` low bits of v round the kept value q up (more than half, or exactly half and q odd). */
function roundBit(v: number, shift: number, q: number): number {
  const rem = v & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rem > half || (rem === half && (q & 1) === 1) ? 1 : 0;
}

/** Little-endian IEEE half bytes of `data`. */
export function f16Bytes(data: Float32Array): Uint8Array {
  const out = new Uint8Array(2 * data.length);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) dv.setUint16(2 * i, f32ToF16Bits(data[i]), true);
  return out;
}
