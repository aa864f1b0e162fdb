// End to end through the CLI: `nrt import llama2c` on the real stories260K, then `nrt export --format gguf`.
// llama2.c and llama.cpp both keep q/k rows interleaved, so the GGUF's attn_q/attn_k must hold llama2.c's own
// wq/wk bytes: this checks the direction of both permutations against an outside layout, not against each other.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gguf } from "@huggingface/gguf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ggufTensorF32, readGguf } from "../../src/export/gguf-read.js";
import { readLlama2cVocab } from "../../src/import/llama2c-tokenizer.js";
import { ensureBuilt as ensureBuiltFor } from "../helpers/ensure-built.js";
import { llama2cEncode } from "../import/llama2c-oracle.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** the real model, committed as a fixture (MIT; test/fixtures/llama2c/SOURCE.md) */
const FIXTURES = join(ROOT, "test", "fixtures", "llama2c");
const MODEL = join(FIXTURES, "stories260K.bin");
const TOK = join(FIXTURES, "tok512.bin");
const tmp = mkdtempSync(join(tmpdir(), "nrt-llama2c-gguf-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function ensureBuilt(): void {
  ensureBuiltFor("src/cli/commands/import.ts", "src/cli/commands/export.ts");
}

function nrt(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, "bin", "nrt.js"), ...args], { encoding: "utf8", timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("nrt import llama2c → nrt export --format gguf (stories260K)", () => {
  const dir = join(tmp, "stories260K");
  const out = join(tmp, "stories260K.gguf");

  beforeAll(() => {
    ensureBuilt();
    const imp = nrt("import", "llama2c", MODEL, "--tokenizer", TOK, "-o", dir, "--json");
    expect(imp.code, imp.stderr).toBe(0);
    expect(JSON.parse(imp.stdout)).toMatchObject({ vocab_size: 512, layers: 5, heads: 8, kv_heads: 4, tied: true });
    const exp = nrt("export", "--format", "gguf", dir, "-o", out, "--json");
    expect(exp.code, exp.stderr).toBe(0);
    expect(JSON.parse(exp.stdout)).toMatchObject({ tensors: 1 + 5 * 9 + 1, tokenizerModel: "llama", dtype: "f32" });
  });

  it("holds llama2.c's own weights: q/k rows back in the interleaved order, no output.weight (tied)", () => {
    const raw = readFileSync(MODEL);
    const floats = new Float32Array(Uint8Array.from(raw.subarray(28)).buffer);
    const [C, F, L, NH, NKV, V] = [64, 172, 5, 8, 4, 512];
    const HS = C / NH;
    let at = 0;
    const next = (k: number) => {
      at += k;
      return floats.subarray(at - k, at);
    };
    const embd = next(V * C);
    next(L * C);
    const wq = next(L * NH * HS * C);
    const wk = next(L * NKV * HS * C);
    const file = readGguf(out);
    expect(ggufTensorF32(file, "token_embd.weight")).toEqual(embd);
    for (let l = 0; l < L; l++) {
      expect(ggufTensorF32(file, `blk.${l}.attn_q.weight`)).toEqual(wq.subarray(l * C * C, (l + 1) * C * C));
      const kv = NKV * HS * C;
      expect(ggufTensorF32(file, `blk.${l}.attn_k.weight`)).toEqual(wk.subarray(l * kv, (l + 1) * kv));
    }
    expect(file.tensors.has("output.weight")).toBe(false);
    expect(file.tensors.get("blk.0.ffn_gate.weight")!.shape).toEqual([F, C]);
  });

  it("carries the tokenizer as a SentencePiece-style llama vocabulary whose scores encode like llama2.c's", async () => {
    const { metadata } = await gguf(out, { allowLocalFile: true });
    const meta = metadata as unknown as Record<string, unknown>;
    expect(meta).toMatchObject({
      "tokenizer.ggml.model": "llama",
      "tokenizer.ggml.bos_token_id": 1,
      "tokenizer.ggml.eos_token_id": 2,
      "tokenizer.ggml.unknown_token_id": 0,
      "tokenizer.ggml.add_space_prefix": true,
      "tokenizer.ggml.add_bos_token": true,
      "llama.context_length": 512,
      "llama.rope.dimension_count": 8,
    });
    const tokens = meta["tokenizer.ggml.tokens"] as string[];
    const types = meta["tokenizer.ggml.token_type"] as number[];
    const scores = meta["tokenizer.ggml.scores"] as number[];
    const original = readLlama2cVocab(readFileSync(TOK), 512, TOK);
    expect(tokens.slice(0, 4)).toEqual(["<unk>", "<s>", "</s>", "<0x00>"]);
    expect(tokens.slice(3)).toEqual(original.pieces.slice(3).map((p) => p.replaceAll(" ", "▁")));
    expect(types.slice(0, 4)).toEqual([2, 3, 3, 6]);
    expect(types.slice(259).every((t) => t === 1)).toBe(true);
    // llama.cpp's SPM tokenizer is llama2.c's merge loop over these scores: same ids for the same text
    const fromGguf = {
      ...original,
      pieces: [...original.pieces.slice(0, 3), ...tokens.slice(3).map((t) => t.replaceAll("▁", " "))],
      scores: Float32Array.from(scores),
    };
    for (const text of ["Once upon a time, there was a little girl named Lily.", 'She said: "Wow!" 123 ☃ ok']) {
      expect(llama2cEncode(fromGguf, text, true)).toEqual(llama2cEncode(original, text, true));
    }
  });

  it("--dtype f16 halves the matrices; bad flags fail with exit code 2 and name the flag", () => {
    const f16 = join(tmp, "f16.gguf");
    const r = nrt("export", "--format", "gguf", "--model", dir, "-o", f16, "--dtype", "f16");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/wrote .*f16\.gguf: GGUF v3, 47 tensors, f16, tokenizer llama/);
    expect(statSync(f16).size).toBeLessThan(0.6 * statSync(out).size);
    const bad = nrt("export", "--format", "onnx", dir, "-o", join(tmp, "x"));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--format: unknown format "onnx"/);
    const badType = nrt("export", "--format", "gguf", dir, "-o", join(tmp, "x"), "--dtype", "bf16");
    expect(badType.code).toBe(2);
    expect(badType.stderr).toMatch(/--dtype: must be f32 or f16/);
    const missing = nrt("import", "llama2c", join(tmp, "nope.bin"), "--tokenizer", TOK, "-o", join(tmp, "y"));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/nope\.bin: cannot read \(ENOENT\)/);
  });
});
