/** Builds raw safetensors bytes by hand, so tests can write what nrt's writer never would. */
export function rawSafetensors(
  header: unknown,
  data: Uint8Array = new Uint8Array(0),
  opts: { headerLength?: bigint } = {},
): Uint8Array {
  const text = typeof header === "string" ? header : JSON.stringify(header);
  const h = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, opts.headerLength ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

/** Little-endian uint16 values as bytes (for F16/BF16 payloads). */
export function u16le(values: number[]): Uint8Array {
  const out = new Uint8Array(2 * values.length);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) dv.setUint16(2 * i, values[i], true);
  return out;
}

/** Concatenates byte chunks. */
export function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}
