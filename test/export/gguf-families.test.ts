// nrt export --format gguf for every family (SPEC §6), checked by real llama.cpp (node-llama-cpp's prebuilt CPU
// binaries): the file loads, and llama.cpp's greedy continuation of a prompt equals `nrt sample --temperature 0`'s
// for 32 tokens, from float32 and bfloat16 checkpoints built around real tokenizers (test/helpers/family-models.ts).
// The metadata and tensor names are those llama.cpp's convert_hf_to_gguf.py writes: arch `llama`/`qwen2`/`qwen3`,
// `blk.N.attn_q.bias`, `blk.N.attn_q_norm.weight`, `rope_freqs.weight` (llama3 scaling), `llama.rope.scaling.*`
// (linear), and `tokenizer.chat_template` where the model has a chat template.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { getLlama, type Llama, type LlamaContext, type LlamaModel, type Token } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { llama3RopeFactors } from "../../src/export/gguf-llama.js";
import { ggufTensorF32, readGguf } from "../../src/export/gguf-read.js";
import { loadModel } from "../../src/io/load.js";
import { maxDiff } from "../helpers/allclose.js";
import { ensureBuilt } from "../helpers/ensure-built.js";
import { FAMILY_FIXTURES, writeFamilyDir } from "../helpers/family-models.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "nrt-gguf-families-"));
const PROMPT = "The quick brown fox jumps over";
const N = 32;
let llama: Llama;
/** max |p_llama.cpp − p_nrt| per case, printed at the end */
const worst: Record<string, number> = {};

beforeAll(async () => {
  ensureBuilt("src/cli/commands/sample.ts", "src/cli/commands/export.ts");
  llama = await getLlama({ gpu: false, build: "never", progressLogs: false, logLevel: "error" });
}, 60_000);
afterAll(async () => {
  if (Object.keys(worst).length > 0)
    console.table(Object.fromEntries(Object.entries(worst).map(([k, v]) => [k, v.toExponential(1)])));
  await llama?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

function nrt(...args: string[]) {
  const r = spawnSync(process.execPath, [join(ROOT, "bin/nrt.js"), ...args], { cwd: ROOT, encoding: "utf8" });
  expect(r.status, `nrt ${args.join(" ")}\n${r.stderr}`).toBe(0);
  return r;
}

/** The model at `path` loaded in llama.cpp, with a context computing in F32, passed to `use`. */
async function withLlamaCpp<T>(
  path: string,
  use: (model: LlamaModel, context: LlamaContext) => Promise<T>,
): Promise<T> {
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  try {
    // an F32 KV cache (llama.cpp's default is F16, ~1e-3 off) and no flash attention: llama.cpp computes in F32
    const context = await model.createContext({
      contextSize: 128,
      batchSize: 128,
      threads: 1,
      flashAttention: false,
      experimentalKvCacheKeyType: "F32",
      experimentalKvCacheValueType: "F32",
    });
    try {
      return await use(model, context);
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/** llama.cpp's greedy continuation of `prompt` (ids), up to `n` tokens or its first end-of-generation token. */
function llamaCppGreedy(path: string, prompt: number[], n: number, eos: number): Promise<number[]> {
  return withLlamaCpp(path, async (model, context) => {
    const out: number[] = [];
    const options = { temperature: 0, yieldEogToken: true };
    for await (const t of context.getSequence().evaluate(prompt as Token[], options)) {
      out.push(t);
      if (out.length >= n || t === eos || model.isEogToken(t)) break;
    }
    return out;
  });
}

/** llama.cpp's next-token distribution (temperature 1, no truncation) after every position of `seq`: (T, V). */
function llamaCppProbs(path: string, seq: number[], V: number): Promise<Float64Array> {
  return withLlamaCpp(path, async (_model, context) => {
    const options = { temperature: 1, topK: 0, topP: 1, minP: 0 };
    const res = await context
      .getSequence()
      .controlledEvaluate(seq.map((t) => [t as Token, { generateNext: { probabilities: true, options } }]));
    const out = new Float64Array(seq.length * V);
    res.forEach((r, i) => {
      const probs = r?.next.probabilities;
      if (probs?.size !== V) throw new Error(`llama.cpp gave ${probs?.size} probabilities at ${i}, not all ${V}`);
      for (const [t, p] of probs) out[i * V + t] = p;
    });
    return out;
  });
}

for (const f of FAMILY_FIXTURES) {
  for (const dtype of ["float32", "bfloat16"] as const) {
    describe(`GGUF of ${f.name} (${dtype} checkpoint) in llama.cpp`, () => {
      const dir = join(tmp, `${f.name}-${dtype}`);
      const path = join(tmp, `${f.name}-${dtype}.gguf`);
      beforeAll(() => {
        writeFamilyDir(dir, f, dtype);
        nrt("export", dir, "--format", "gguf", "--out", path);
      });

      it("is named as llama.cpp names the family", () => {
        const file = readGguf(path);
        const c = loadModel(dir).model.config;
        const arch = { llama: "llama", mistral: "llama", qwen2: "qwen2", qwen3: "qwen3" }[c.modelType];
        expect(file.metadata.get("general.architecture")).toBe(arch);
        expect(file.metadata.get(`${arch}.block_count`)).toBe(c.numLayers);
        const names = [...file.tensors.keys()];
        expect(names.includes("blk.1.attn_q.bias")).toBe(c.qkvBias);
        expect(names.includes("blk.1.attn_v.bias")).toBe(c.qkvBias);
        expect(names.includes("blk.1.attn_q_norm.weight")).toBe(c.qkNorm);
        expect(names.includes("blk.1.attn_k_norm.weight")).toBe(c.qkNorm);
        expect(names.includes("output.weight")).toBe(!c.tied);
        expect(names.includes("rope_freqs.weight")).toBe(c.ropeScaling?.type === "llama3");
        if (c.ropeScaling?.type === "llama3") {
          // 8 frequencies: 1 kept, 2 blended, 5 divided by the factor 8
          const factors = Array.from(ggufTensorF32(file, "rope_freqs.weight"));
          expect(factors).toEqual(Array.from(llama3RopeFactors(c)));
          expect(factors.filter((x) => x === 1)).toHaveLength(1);
          expect(factors.filter((x) => x === 8)).toHaveLength(5);
        }
        if (c.ropeScaling?.type === "linear") {
          expect(file.metadata.get("llama.rope.scaling.type")).toBe("linear");
          expect(file.metadata.get("llama.rope.scaling.factor")).toBe(4);
        } else expect(file.metadata.has(`${arch}.rope.scaling.type`)).toBe(false);
        if (arch === "qwen3") expect(file.metadata.get("qwen3.attention.key_length")).toBe(c.headDim);
        const template =
          f.tokenizer === "qwen2"
            ? JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8")).chat_template
            : undefined;
        expect(file.metadata.get("tokenizer.chat_template")).toBe(template);
        expect(file.metadata.get("tokenizer.ggml.pre")).toBe(f.tokenizer === "qwen2" ? "qwen2" : "llama-bpe");
      });

      it(`llama.cpp's greedy continuation equals nrt sample --temperature 0 for ${N} tokens`, async () => {
        const r = nrt("sample", dir, "--prompt", PROMPT, "--temperature", "0", "--max-new-tokens", String(N), "--json");
        const ours = JSON.parse(r.stdout).samples[0].tokens as number[];
        const { tokenizer } = loadModel(dir);
        const prompt = [...(tokenizer.bosId !== null ? [tokenizer.bosId] : []), ...tokenizer.encode(PROMPT)];
        const theirs = await llamaCppGreedy(path, prompt, N, tokenizer.eosId ?? -1);
        expect(theirs).toEqual(ours);
        expect(ours).toHaveLength(N); // the fixtures do not stop early, so all 32 tokens are compared
      }, 60_000);

      it("llama.cpp's next-token probabilities at every position equal nrt's (float32 rounding)", async () => {
        const { model, tokenizer } = loadModel(dir);
        const V = model.config.vocabSize;
        const seq = [
          ...(tokenizer.bosId !== null ? [tokenizer.bosId] : []),
          ...tokenizer.encode(`${PROMPT} the lazy dog`),
        ];
        model.runner.forward(Int32Array.from(seq), Int32Array.of(seq.length));
        const logits = model.runner.logits();
        const ours = new Float64Array(seq.length * V);
        for (let i = 0; i < seq.length; i++) {
          const row = logits.subarray(i * V, (i + 1) * V);
          let mx = -Infinity;
          for (const x of row) mx = Math.max(mx, x);
          let z = 0;
          for (const x of row) z += Math.exp(x - mx);
          for (let v = 0; v < V; v++) ours[i * V + v] = Math.exp(row[v] - mx) / z;
        }
        const theirs = await llamaCppProbs(path, seq, V);
        const d = maxDiff(theirs, ours).diff;
        worst[`${f.name} ${dtype}`] = d;
        expect(d).toBeLessThan(1e-4);
      }, 60_000);
    });
  }
}

describe("negative control: the scaling matters for these prompts", () => {
  for (const f of FAMILY_FIXTURES.filter((x) => x.over.ropeScaling)) {
    it(`${f.name} exported without its rope_scaling continues differently in llama.cpp`, async () => {
      const dir = join(tmp, `${f.name}-control`);
      const plain = join(tmp, `${f.name}-plain`);
      writeFamilyDir(dir, f, "float32");
      cpSync(dir, plain, { recursive: true });
      const cfg = JSON.parse(readFileSync(join(plain, "config.json"), "utf8"));
      writeFileSync(join(plain, "config.json"), JSON.stringify({ ...cfg, rope_scaling: null }));
      const path = join(tmp, `${f.name}-plain.gguf`);
      nrt("export", plain, "--format", "gguf", "--out", path);
      const r = nrt("sample", dir, "--prompt", PROMPT, "--temperature", "0", "--max-new-tokens", String(N), "--json");
      const ours = JSON.parse(r.stdout).samples[0].tokens as number[];
      const { tokenizer } = loadModel(dir);
      const prompt = [...(tokenizer.bosId !== null ? [tokenizer.bosId] : []), ...tokenizer.encode(PROMPT)];
      expect(await llamaCppGreedy(path, prompt, N, tokenizer.eosId ?? -1)).not.toEqual(ours);
    }, 60_000);
  }
});
