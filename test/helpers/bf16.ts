// Rewrites a model directory's model.safetensors in bfloat16 (round to nearest even), as checkpoints published in
// bf16 come: the tests then read the same numbers that nrt and the PyTorch reference both see. Not a test file.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readSafetensors } from "../../src/io/safetensors.js";

/** float32 → bfloat16 bits, round to nearest even (finite inputs). */
export function bf16Bits(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0];
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Rewrites DIR/model.safetensors with every tensor in BF16; returns the tensor names. */
export function toBf16Dir(dir: string): string[] {
  const path = join(dir, "model.safetensors");
  const { tensors, metadata } = readSafetensors(path);
  const header: Record<string, unknown> = { __metadata__: metadata };
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const b = Buffer.alloc(2 * t.data.length);
    for (let i = 0; i < t.data.length; i++) b.writeUInt16LE(bf16Bits(t.data[i]), 2 * i);
    header[name] = { dtype: "BF16", shape: t.shape, data_offsets: [offset, offset + b.length] };
    chunks.push(b);
    offset += b.length;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  writeFileSync(path, Buffer.concat([len, Buffer.from(json), ...chunks]));
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  writeFileSync(join(dir, "config.json"), `${JSON.stringify({ ...config, torch_dtype: "bfloat16" }, null, 2)}\n`);
  return [...tensors.keys()];
}
