/**
 * Just enough tar for checkpoint archives (SkyRL's sampler checkpoints are an uncompressed tar of a Hugging Face
 * directory, named .tar.gz): ustar regular files, PAX `path` records (Python's default format), gzip detected by
 * its magic. (The writer, for nrt's stand-in Tinker server, is test/stand-ins/tar.ts.)
 */
import { gunzipSync } from "node:zlib";

export interface TarFile {
  name: string;
  data: Uint8Array;
}

export const TAR_BLOCK = 512;
const BLOCK = TAR_BLOCK;

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
