// The tar writer of the stand-in Tinker server (its sampler checkpoints are tar archives, as SkyRL's are); the
// reader nrt uses is src/engine/_tar.ts.
import { TAR_BLOCK as BLOCK, type TarFile } from "../../src/engine/_tar.js";

/** A ustar archive of `files` (names < 100 bytes). */
export function tar(files: readonly TarFile[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const f of files) {
    const h = new Uint8Array(BLOCK);
    const put = (s: string, at: number) => h.set(new TextEncoder().encode(s), at);
    if (new TextEncoder().encode(f.name).length >= 100) throw new Error(`tar: name too long: ${f.name}`);
    put(f.name, 0);
    put("0000644\0", 100);
    put("0000000\0", 108);
    put("0000000\0", 116);
    put(`${f.data.length.toString(8).padStart(11, "0")}\0`, 124);
    put("00000000000\0", 136);
    put("        ", 148);
    h[156] = 0x30;
    put("ustar\0", 257);
    put("00", 263);
    let sum = 0;
    for (const b of h) sum += b;
    put(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
    parts.push(h, f.data, new Uint8Array((BLOCK - (f.data.length % BLOCK)) % BLOCK));
  }
  parts.push(new Uint8Array(2 * BLOCK));
  const total = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
