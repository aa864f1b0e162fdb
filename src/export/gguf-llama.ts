/**
 * The families in GGUF as llama.cpp names them (the names llama.cpp's convert_hf_to_gguf.py writes): the
 * architecture string (`llama` for Llama and Mistral, `qwen2`, `qwen3`), the `<arch>.*` hyperparameters and tensor
 * names (`blk.N.attn_q.bias`, `blk.N.attn_q_norm.weight`), RoPE scaling (`<arch>.rope.scaling.type/factor` for
 * linear; llama3's per-frequency factors as the `rope_freqs.weight` tensor), and, for `llama` only, the Q/K row
 * permutation between nrt's half-split RoPE and llama.cpp's interleaved one. llama.cpp runs qwen2 and qwen3 with
 * its NEOX RoPE, which is the half-split form itself, so their rows stay as they are. Reading back
 * (`modelFromGguf`) is for `llama` files.
 */
import { NrtError } from "../errors.js";
import { f32Bytes } from "../io/_dtypes.js";
import { f16Bytes } from "../io/f16.js";
import type { Architecture, ModelConfig } from "../model/config.js";
import { llamaConfig } from "../model/config.js";
import { Model } from "../model/model.js";
import { type GgmlTypeName, type GgufValue, gv } from "./gguf.js";
import { type GgufFile, type GgufMetaValue, ggufTensorF32 } from "./gguf-read.js";
import { halfSplitToInterleaved, interleavedToHalfSplit } from "./rope-permute.js";

const LAYER_NAMES: Record<string, string> = {
  "input_layernorm.weight": "attn_norm.weight",
  "self_attn.q_proj.weight": "attn_q.weight",
  "self_attn.k_proj.weight": "attn_k.weight",
  "self_attn.v_proj.weight": "attn_v.weight",
  "self_attn.q_proj.bias": "attn_q.bias",
  "self_attn.k_proj.bias": "attn_k.bias",
  "self_attn.v_proj.bias": "attn_v.bias",
  "self_attn.q_norm.weight": "attn_q_norm.weight",
  "self_attn.k_norm.weight": "attn_k_norm.weight",
  "self_attn.o_proj.weight": "attn_output.weight",
  "post_attention_layernorm.weight": "ffn_norm.weight",
  "mlp.gate_proj.weight": "ffn_gate.weight",
  "mlp.up_proj.weight": "ffn_up.weight",
  "mlp.down_proj.weight": "ffn_down.weight",
};
const TOP_NAMES: Record<string, string> = {
  "model.embed_tokens.weight": "token_embd.weight",
  "model.norm.weight": "output_norm.weight",
  "lm_head.weight": "output.weight",
};

/** The GGUF name of a Hugging Face tensor name (`model.layers.3.mlp.up_proj.weight` → `blk.3.ffn_up.weight`). */
export function ggufName(hf: string): string {
  if (Object.hasOwn(TOP_NAMES, hf)) return TOP_NAMES[hf];
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hf);
  if (m && Object.hasOwn(LAYER_NAMES, m[2])) return `blk.${m[1]}.${LAYER_NAMES[m[2]]}`;
  throw new Error(`no GGUF name for tensor ${hf}`);
}

/** llama.cpp's architecture for each family: Mistral is its `llama` (the window is checked by the exporter). */
export const GGUF_ARCH: Record<Architecture, "llama" | "qwen2" | "qwen3"> = {
  llama: "llama",
  mistral: "llama",
  qwen2: "qwen2",
  qwen3: "qwen3",
};

/** The `<arch>.*` hyperparameters llama.cpp reads, RoPE scaling included. */
export function archMetadata(c: ModelConfig): [string, GgufValue][] {
  const a = GGUF_ARCH[c.modelType];
  const kv: [string, GgufValue][] = [
    [`${a}.context_length`, gv.u32(c.maxPositionEmbeddings)],
    [`${a}.embedding_length`, gv.u32(c.hiddenSize)],
    [`${a}.block_count`, gv.u32(c.numLayers)],
    [`${a}.feed_forward_length`, gv.u32(c.intermediateSize)],
    [`${a}.attention.head_count`, gv.u32(c.numHeads)],
    [`${a}.attention.head_count_kv`, gv.u32(c.numKvHeads)],
    [`${a}.rope.freq_base`, gv.f32(c.ropeTheta)],
    [`${a}.attention.layer_norm_rms_epsilon`, gv.f32(c.rmsNormEps)],
    [`${a}.rope.dimension_count`, gv.u32(c.headDim)],
    [`${a}.vocab_size`, gv.u32(c.vocabSize)],
  ];
  if (c.headDim * c.numHeads !== c.hiddenSize || a === "qwen3") {
    kv.push([`${a}.attention.key_length`, gv.u32(c.headDim)], [`${a}.attention.value_length`, gv.u32(c.headDim)]);
  }
  if (c.ropeScaling?.type === "linear") {
    kv.push([`${a}.rope.scaling.type`, gv.str("linear")], [`${a}.rope.scaling.factor`, gv.f32(c.ropeScaling.factor)]);
  }
  return kv;
}

/**
 * llama3 RoPE scaling as llama.cpp takes it: one factor per rotary frequency (HS/2), by which llama.cpp divides
 * that frequency: 1 for the short wavelengths, `factor` for the long ones, and between them the inverse of the
 * blend (SPEC §6; transformers' _compute_llama3_parameters), computed in float64 from the float32 frequencies.
 */
export function llama3RopeFactors(c: ModelConfig): Float32Array {
  const r = c.ropeScaling;
  if (r?.type !== "llama3") throw new Error("not llama3 RoPE scaling");
  const half = c.headDim / 2;
  const out = new Float32Array(half);
  const lowWavelen = r.originalMaxPositionEmbeddings / r.lowFreqFactor;
  const highWavelen = r.originalMaxPositionEmbeddings / r.highFreqFactor;
  for (let d = 0; d < half; d++) {
    const freq = Math.fround(1 / Math.fround(c.ropeTheta ** ((2 * d) / c.headDim)));
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[d] = 1;
    else if (wavelen > lowWavelen) out[d] = r.factor;
    else {
      const smooth =
        (r.originalMaxPositionEmbeddings / wavelen - r.lowFreqFactor) / (r.highFreqFactor - r.lowFreqFactor);
      out[d] = 1 / ((1 - smooth) / r.factor + smooth);
    }
  }
  return out;
}

/** One tensor as it goes into the GGUF file. */
export interface GgufTensorOut {
  name: string;
  /** row-major shape (the writer reverses it) */
  shape: number[];
  type: GgmlTypeName;
  /** the bytes, computed when written (so that one converted tensor at a time is in memory) */
  bytes: () => Uint8Array;
}

/**
 * The model's tensors under GGUF names, no `output.weight` when tied; for the `llama` architecture q/k rows
 * permuted to the interleaved layout, and with llama3 RoPE scaling the `rope_freqs.weight` factors. Matrices in
 * `dtype`; 1-D tensors (norms, biases, factors) always F32, as llama.cpp's converter keeps them.
 */
export function archTensors(model: Model, dtype: "f32" | "f16"): GgufTensorOut[] {
  const c = model.config;
  const interleave = GGUF_ARCH[c.modelType] === "llama";
  const out = model.table.map((p): GgufTensorOut => {
    const type: GgmlTypeName = p.shape.length === 1 || dtype === "f32" ? "F32" : "F16";
    const bytes = () => {
      let w = model.view(p.name);
      if (interleave && p.name.endsWith(".q_proj.weight")) w = halfSplitToInterleaved(w, c.numHeads, c.headDim);
      else if (interleave && p.name.endsWith(".k_proj.weight")) w = halfSplitToInterleaved(w, c.numKvHeads, c.headDim);
      return type === "F32" ? f32Bytes(w) : f16Bytes(w);
    };
    return { name: ggufName(p.name), shape: p.shape, type, bytes };
  });
  if (c.ropeScaling?.type === "llama3") {
    const factors = llama3RopeFactors(c);
    out.push({ name: "rope_freqs.weight", shape: [factors.length], type: "F32", bytes: () => f32Bytes(factors) });
  }
  return out;
}

/**
 * The nrt Model in a llama GGUF (F32/F16 tensors): config from the `llama.*` keys, tokens ids from
 * `tokenizer.ggml.*`, tensors by name with q/k rows permuted back to the half-split layout.
 */
export function modelFromGguf(file: GgufFile, where = "gguf"): { model: Model; config: ModelConfig } {
  const meta = file.metadata;
  const arch = meta.get("general.architecture");
  if (arch !== "llama") throw new NrtError(`general.architecture is ${JSON.stringify(arch)}, not "llama"`, where);
  if (file.tensors.has("rope_freqs.weight") || meta.has("llama.rope.scaling.type")) {
    throw new NrtError("reading RoPE scaling back from GGUF is not supported", where);
  }
  const num = (key: string, def?: number): number => {
    const v = meta.get(key) ?? def;
    if (typeof v !== "number") throw new NrtError(`missing or non-numeric ${key}`, where);
    return v;
  };
  const optionalId = (key: string): number | null => (typeof meta.get(key) === "number" ? num(key) : null);
  const embd = file.tensors.get("token_embd.weight");
  if (!embd) throw new NrtError("missing tensor token_embd.weight", where);
  const hidden = num("llama.embedding_length");
  const heads = num("llama.attention.head_count");
  const tokens = meta.get("tokenizer.ggml.tokens") as GgufMetaValue[] | undefined;
  const answerStart = tokens ? tokens.indexOf("<answer_start>") : -1;
  const config = llamaConfig({
    vocabSize: embd.shape[0],
    hiddenSize: hidden,
    intermediateSize: num("llama.feed_forward_length"),
    numLayers: num("llama.block_count"),
    numHeads: heads,
    numKvHeads: num("llama.attention.head_count_kv", heads),
    headDim: num("llama.attention.key_length", hidden / heads),
    rmsNormEps: shortestF32(num("llama.attention.layer_norm_rms_epsilon")),
    ropeTheta: shortestF32(num("llama.rope.freq_base", 10000)),
    maxPositionEmbeddings: num("llama.context_length"),
    tied: !file.tensors.has("output.weight"),
    bosTokenId: optionalId("tokenizer.ggml.bos_token_id"),
    eosTokenId: optionalId("tokenizer.ggml.eos_token_id"),
    answerStartTokenId: answerStart >= 0 ? answerStart : null,
  });
  const model = new Model(config);
  for (const p of model.table) {
    const name = ggufName(p.name);
    const t = file.tensors.get(name);
    if (!t) throw new NrtError(`missing tensor ${name}`, where);
    if (t.shape.join(",") !== p.shape.join(",")) {
      throw new NrtError(`${name} has shape [${t.shape}], expected [${p.shape}]`, where);
    }
    let w = ggufTensorF32(file, name);
    if (name.endsWith(".attn_q.weight")) w = interleavedToHalfSplit(w, config.numHeads, config.headDim);
    else if (name.endsWith(".attn_k.weight")) w = interleavedToHalfSplit(w, config.numKvHeads, config.headDim);
    model.view(p.name).set(w);
  }
  return { model, config };
}

/** The shortest decimal that is the same float32 as `x` (GGUF stores ε and θ as f32: 1e-5 comes back as 1e-5). */
function shortestF32(x: number): number {
  for (let p = 1; p < 17; p++) {
    const d = Number(x.toPrecision(p));
    if (Math.fround(d) === Math.fround(x)) return d;
  }
  return x;
}
