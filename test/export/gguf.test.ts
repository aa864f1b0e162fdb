// nrt export --format gguf on a tiny model trained in the test: the file parses with @huggingface/gguf (metadata
// and tensor infos as expected), and its tensors, read back by our own reader with q/k un-permuted, give our
// engine the same logits as the original model (bit for bit in F32; in F16 exactly those of the f16-rounded model).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GGMLQuantizationType, gguf } from "@huggingface/gguf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { modelFromGguf } from "../../src/export/gguf-llama.js";
import { ggufTensorF32, readGguf } from "../../src/export/gguf-read.js";
import { exportGguf } from "../../src/export/to-gguf.js";
import { f16ToF32 } from "../../src/io/_dtypes.js";
import { f32ToF16Bits } from "../../src/io/f16.js";
import { saveModelDir } from "../../src/io/model-dir.js";
import { llamaConfig, type ModelConfig } from "../../src/model/config.js";
import { Model } from "../../src/model/model.js";
import { native, setThreads } from "../../src/model/native.js";
import { CHAR_IDS, CHAR_VOCAB_SIZE, charTokenizerJson } from "../../src/tokenizer/char-tokenizer-json.js";
import { Tokenizer } from "../../src/tokenizer/tokenizer.js";
import { expectAllclose } from "../helpers/allclose.js";

const tmp = mkdtempSync(join(tmpdir(), "nrt-gguf-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const tok = Tokenizer.fromJson(charTokenizerJson());
const CORPUS = ["a7,b+4,c*6,d+2;d", "a3,b*2;b", "a0,b+9,c+1;c", "a5,b*3,c*7;b,c"];
const seq = (q: string) => [CHAR_IDS.bos, ...tok.encode(q), CHAR_IDS.eos];

const CASES: { name: string; over: Partial<ModelConfig> }[] = [
  { name: "untied GQA", over: { numHeads: 4, numKvHeads: 2 } },
  // head_dim 12 ≠ hidden/heads = 8: llama.attention.key_length/value_length are written
  { name: "tied MQA, head_dim ≠ hidden/heads", over: { numHeads: 4, numKvHeads: 1, headDim: 12, tied: true } },
];

/** A few AdamW steps of next-token training on CORPUS, so the weights are not the symmetric initialisation. */
function trainedModel(over: Partial<ModelConfig>): Model {
  const config = llamaConfig({
    vocabSize: CHAR_VOCAB_SIZE,
    hiddenSize: 32,
    intermediateSize: 48,
    numLayers: 2,
    maxPositionEmbeddings: 64,
    bosTokenId: CHAR_IDS.bos,
    eosTokenId: CHAR_IDS.eos,
    answerStartTokenId: CHAR_IDS.answerStart,
    ...over,
  });
  const model = Model.init(config, 7, 0.1);
  const seqs = CORPUS.map(seq);
  const tokens = Int32Array.from(seqs.flat());
  const seqLens = Int32Array.from(seqs.map((s) => s.length));
  const weights = new Float32Array(tokens.length).fill(1 / tokens.length);
  const [grads, m, v] = [model.zeros(), model.zeros(), model.zeros()];
  for (let step = 1; step <= 5; step++) {
    model.runner.forward(tokens, seqLens);
    grads.fill(0);
    model.runner.backward(weights, grads);
    native().adamw(config, model.params, grads, m, v, {
      lr: 1e-2,
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-8,
      weightDecay: 0,
      clip: 1,
      step,
    });
  }
  return model;
}

function logitsOf(model: Model): Float32Array {
  const seqs = CORPUS.map(seq);
  model.runner.forward(Int32Array.from(seqs.flat()), Int32Array.from(seqs.map((s) => s.length)));
  return model.runner.logits();
}

describe.each(CASES)("GGUF export of a trained tiny model ($name)", ({ name, over }) => {
  let model: Model;
  let dir: string;
  const out = (dtype: string) => join(tmp, `${name.replace(/\W+/g, "-")}.${dtype}.gguf`);

  beforeAll(() => {
    setThreads(1);
    model = trainedModel(over);
    dir = join(tmp, name.replace(/\W+/g, "-"));
    saveModelDir(dir, model, { "tokenizer.json": JSON.stringify(charTokenizerJson()) });
    for (const dtype of ["f32", "f16"] as const) exportGguf(dir, out(dtype), { dtype });
  });

  it("parses with @huggingface/gguf: llama metadata, tokenizer, tensor names/shapes/types", async () => {
    const c = model.config;
    for (const dtype of ["f32", "f16"] as const) {
      const { metadata, tensorInfos } = await gguf(out(dtype), { allowLocalFile: true });
      const meta = metadata as unknown as Record<string, unknown>;
      expect(meta.version).toBe(3);
      expect(meta).toMatchObject({
        "general.architecture": "llama",
        "general.file_type": dtype === "f32" ? 0 : 1,
        "general.alignment": 32,
        "llama.context_length": 64,
        "llama.embedding_length": 32,
        "llama.block_count": 2,
        "llama.feed_forward_length": 48,
        "llama.attention.head_count": c.numHeads,
        "llama.attention.head_count_kv": c.numKvHeads,
        "llama.rope.dimension_count": c.headDim,
        "llama.rope.freq_base": 10000,
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2,
        "tokenizer.ggml.padding_token_id": 0,
        "tokenizer.ggml.add_bos_token": true,
        "nrt.answer_start_token_id": 3,
      });
      expect(meta["llama.attention.layer_norm_rms_epsilon"]).toBeCloseTo(1e-5, 10);
      expect(meta["llama.attention.key_length"]).toBe(c.headDim === 8 ? undefined : 12);
      // the char vocabulary spelled the way llama.cpp's gpt2 tokenizer spells bytes: space is Ġ
      const tokens = meta["tokenizer.ggml.tokens"] as string[];
      expect(tokens).toEqual(["<pad>", "<s>", "</s>", "<answer_start>", ..."0123456789abcdefghij+*=,;", "Ġ"]);
      expect(meta["tokenizer.ggml.token_type"]).toEqual([3, 3, 3, 3, ...new Array(26).fill(1)]);
      expect(meta["tokenizer.ggml.merges"]).toEqual([]);

      const expected = model.table.map((p) => ({
        name: ggufNameOf(p.name),
        shape: [...p.shape].reverse().map(BigInt),
        dtype: p.shape.length === 1 || dtype === "f32" ? GGMLQuantizationType.F32 : GGMLQuantizationType.F16,
      }));
      expect(tensorInfos.map(({ name, shape, dtype }) => ({ name, shape, dtype }))).toEqual(expected);
      expect(tensorInfos.some((t) => t.name === "output.weight")).toBe(!c.tied);
      for (const t of tensorInfos) expect(Number(t.offset) % 32).toBe(0);
    }
  });

  it("stores q/k rows in llama.cpp's interleaved order (convert_hf_to_gguf.py's permute, written out here)", () => {
    const file = readGguf(out("f32"));
    const c = model.config;
    for (const [hf, gg, heads] of [
      ["model.layers.1.self_attn.q_proj.weight", "blk.1.attn_q.weight", c.numHeads],
      ["model.layers.1.self_attn.k_proj.weight", "blk.1.attn_k.weight", c.numKvHeads],
    ] as const) {
      // permute: w.reshape(heads, 2, HS/2, C).swapaxes(1, 2) → GGUF row (h, 2i + half) = HF row (h, half·HS/2 + i)
      const w = model.view(hf);
      const C = c.hiddenSize;
      const HS = c.headDim;
      const want = new Float32Array(w.length);
      for (let h = 0; h < heads; h++)
        for (let i = 0; i < HS / 2; i++)
          for (let half = 0; half < 2; half++)
            want.set(
              w.subarray((h * HS + half * (HS / 2) + i) * C, (h * HS + half * (HS / 2) + i + 1) * C),
              (h * HS + 2 * i + half) * C,
            );
      expect(ggufTensorF32(file, gg)).toEqual(want);
    }
  });

  it("read back into our engine: identical logits from the F32 file", () => {
    const { model: back, config } = modelFromGguf(readGguf(out("f32")));
    expect(config).toEqual(model.config);
    expect(back.params).toEqual(model.params);
    expect(logitsOf(back)).toEqual(logitsOf(model));
  });

  it("read back into our engine: the F16 file gives the f16-rounded model's logits, close to the original's", () => {
    const { model: back } = modelFromGguf(readGguf(out("f16")));
    const rounded = new Model(model.config, Float32Array.from(model.params));
    for (const p of rounded.table) {
      if (p.shape.length === 1) continue; // norm weights stay F32
      const v = rounded.view(p.name);
      for (let i = 0; i < v.length; i++) v[i] = f16ToF32(f32ToF16Bits(v[i]));
    }
    expect(back.params).toEqual(rounded.params);
    const original = logitsOf(model);
    const got = logitsOf(back);
    expect(got).toEqual(logitsOf(rounded));
    const scale = original.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
    expectAllclose(got, original, { atol: 2e-3 * scale, rtol: 0, what: "f16 logits" });
    expect(readFileSync(out("f16")).length).toBeLessThan(readFileSync(out("f32")).length);
  });
});

function ggufNameOf(hf: string): string {
  const top: Record<string, string> = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
  };
  if (top[hf]) return top[hf];
  const [, n, rest] = /^model\.layers\.(\d+)\.(.+)$/.exec(hf)!;
  const map: Record<string, string> = {
    "input_layernorm.weight": "attn_norm",
    "self_attn.q_proj.weight": "attn_q",
    "self_attn.k_proj.weight": "attn_k",
    "self_attn.v_proj.weight": "attn_v",
    "self_attn.o_proj.weight": "attn_output",
    "post_attention_layernorm.weight": "ffn_norm",
    "mlp.gate_proj.weight": "ffn_gate",
    "mlp.up_proj.weight": "ffn_up",
    "mlp.down_proj.weight": "ffn_down",
  };
  return `blk.${n}.${map[rest]}.weight`;
}
