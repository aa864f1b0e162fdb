/**
 * Just enough tar for checkpoint archives (SkyRL's sampler checkpoints are an uncompressed tar of a Hugging Face
 * directory, named .tar.gz): ustar regular files, PAX `path` records (Python's default format), gzip detected by
 * its magic. Writing makes plain ustar with names under 100 bytes.
 */
import { gunzipSync } from "node:zlib";

export interface TarFile {
  name: string;
  data: Uint8Array;
}

const BLOCK = 512;

function field(h: Uint8Array, at: number, len: number): string {
  let end = at;
  while (end < at + len && h[end] !== 0) end++;
  return new TextDecoder().decode(h.subarray(at, end));
}

function octal(h: Uint8Array, at: number, len: number): number {
  if (h[at] & 0x80) {
    // base-256 (GNU) for sizes of 8 GiB and more
    let v = 0;
    for (let i = at + 1; i < at + len; i++) v = v * 256 + h[i];
    return v;
  }
  const s = field(h, at, len).trim();
  return s ? Number.parseInt(s, 8) : 0;
}

/** The regular files of a tar (or gzipped tar), names without a leading "./". */
export function untar(bytes: Uint8Array): TarFile[] {
  const buf = bytes[0] === 0x1f && bytes[1] === 0x8b ? new Uint8Array(gunzipSync(bytes)) : bytes;
  const out: TarFile[] = [];
  let pax: Record<string, string> = {};
  for (let at = 0; at + BLOCK <= buf.length; ) {
    const h = buf.subarray(at, at + BLOCK);
    if (h.every((b) => b === 0)) break;
    const size = octal(h, 124, 12);
    const type = String.fromCharCode(h[156] || 0x30);
    const magic = field(h, 257, 6);
    const prefix = magic.startsWith("ustar") ? field(h, 345, 155) : "";
    const data = buf.subarray(at + BLOCK, at + BLOCK + size);
    if (data.length < size) throw new Error("truncated tar archive");
    at += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    if (type === "x") {
      pax = parsePax(data);
      continue;
    }
    if (type === "g") continue;
    if (type === "0" || type === "\0" || type === "7") {
      const name = pax.path ?? (prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100));
      out.push({ name: name.replace(/^(\.\/)+/, ""), data });
    }
    pax = {};
  }
  return out;
}

function parsePax(data: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  const text = new TextDecoder().decode(data);
  for (let i = 0; i < text.length; ) {
    const sp = text.indexOf(" ", i);
    const len = Number.parseInt(text.slice(i, sp), 10);
    if (!(len > 0)) break;
    const rec = text.slice(sp + 1, i + len - 1);
    const eq = rec.indexOf("=");
    out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

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
