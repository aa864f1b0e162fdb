/**
 * llama2.c's legacy checkpoint (`model.bin` as written by llama2.c's `export.py --version 0` and read by `run.c`):
 *
 *   header: 7 × int32   dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
 *                       (vocab_size < 0 means an untied classifier `wcls` follows at the end)
 *   then float32, row-major, each stacked over the layers L:
 *     token_embedding (V, C) · rms_att (L, C) · wq (L, NH·HS, C) · wk (L, NKV·HS, C) · wv (L, NKV·HS, C)
 *     · wo (L, C, NH·HS) · rms_ffn (L, C) · w1 (L, F, C) · w2 (L, C, F) · w3 (L, F, C) · rms_final (C)
 *     · freq_cis_real (T, HS/2) · freq_cis_imag (T, HS/2)  (unused) · [wcls (V, C)]
 *
 * Matrices are stored (out, in) like a PyTorch Linear weight, so they map one to one onto the Hugging Face names
 * (w1 = gate_proj, w3 = up_proj, w2 = down_proj), except that wq/wk rows are in llama2.c's interleaved RoPE layout
 * and are permuted per head into nrt's half-split layout (see rope-permute.ts).
 */
import { NrtError } from "../errors.js";
import { interleavedToHalfSplit } from "../export/rope-permute.js";
import { decodeF32 } from "../io/_dtypes.js";
import { llamaConfig, type ModelConfig } from "../model/config.js";

/** The header of a legacy llama2.c checkpoint. */
export interface Llama2cHeader {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  /** false when the file's vocab_size was negative (an untied `wcls` follows) */
  shared: boolean;
}

const HEADER_BYTES = 28;
/** llama2.c's versioned checkpoints (export.py --version 1/2) start with this magic ("ak42") */
const VERSIONED_MAGIC = 0x616b3432;

/** Reads and checks the header, and that the file has exactly the bytes it announces. */
export function readLlama2cHeader(bytes: Uint8Array, where: string): Llama2cHeader {
  if (bytes.length < HEADER_BYTES) throw new NrtError(`file is ${bytes.length} bytes, too short for a header`, where);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) === VERSIONED_MAGIC) {
    throw new NrtError("a versioned llama2.c checkpoint (magic 'ak42'); only the legacy format is supported", where);
  }
  const f = Array.from({ length: 7 }, (_, i) => dv.getInt32(4 * i, true));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, seqLen] = f;
  const h: Llama2cHeader = {
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    vocabSize: Math.abs(vocab),
    seqLen,
    shared: vocab > 0,
  };
  const names = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];
  f.forEach((v, i) => {
    if (v === 0 || (v < 0 && i !== 5)) throw new NrtError(`header field ${names[i]} is ${v}`, where);
  });
  if (dim % nHeads !== 0 || nHeads % nKvHeads !== 0 || (dim / nHeads) % 2 !== 0) {
    throw new NrtError(`header dim ${dim}, n_heads ${nHeads}, n_kv_heads ${nKvHeads} do not fit together`, where);
  }
  const expected = HEADER_BYTES + 4 * floatCount(h);
  if (bytes.length !== expected) {
    throw new NrtError(
      `file is ${bytes.length} bytes but its header (${f.join(", ")}) announces ${expected} (not a legacy llama2.c checkpoint?)`,
      where,
    );
  }
  return h;
}

/** The nrt config of a llama2.c model: run.c's fixed RoPE θ 10000 and RMSNorm ε 1e-5, ⟨bos⟩ 1, ⟨eos⟩ 2. */
export function llama2cConfig(h: Llama2cHeader): ModelConfig {
  return llamaConfig({
    vocabSize: h.vocabSize,
    hiddenSize: h.dim,
    intermediateSize: h.hiddenDim,
    numLayers: h.nLayers,
    numHeads: h.nHeads,
    numKvHeads: h.nKvHeads,
    headDim: h.dim / h.nHeads,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    maxPositionEmbeddings: h.seqLen,
    tied: h.shared,
    bosTokenId: 1,
    eosTokenId: 2,
  });
}

/** The checkpoint's tensors under their Hugging Face names (q/k already half-split), in file order. */
export function readLlama2cTensors(bytes: Uint8Array, h: Llama2cHeader): Map<string, Float32Array> {
  const floats = decodeF32(bytes.subarray(HEADER_BYTES));
  let at = 0;
  const take = (n: number): Float32Array => {
    at += n;
    return floats.subarray(at - n, at);
  };
  const { dim: C, hiddenDim: F, nLayers: L, nHeads: NH, nKvHeads: NKV, vocabSize: V, seqLen: T } = h;
  const HS = C / NH;
  const out = new Map<string, Float32Array>();
  const perLayer = (block: Float32Array, name: (l: number) => string, map = (w: Float32Array) => w) => {
    const n = block.length / L;
    for (let l = 0; l < L; l++) out.set(name(l), map(block.subarray(l * n, (l + 1) * n)));
  };
  const layer = (l: number) => `model.layers.${l}`;
  out.set("model.embed_tokens.weight", take(V * C));
  perLayer(take(L * C), (l) => `${layer(l)}.input_layernorm.weight`);
  perLayer(
    take(L * NH * HS * C),
    (l) => `${layer(l)}.self_attn.q_proj.weight`,
    (w) => interleavedToHalfSplit(w, NH, HS),
  );
  perLayer(
    take(L * NKV * HS * C),
    (l) => `${layer(l)}.self_attn.k_proj.weight`,
    (w) => interleavedToHalfSplit(w, NKV, HS),
  );
  perLayer(take(L * NKV * HS * C), (l) => `${layer(l)}.self_attn.v_proj.weight`);
  perLayer(take(L * C * NH * HS), (l) => `${layer(l)}.self_attn.o_proj.weight`);
  perLayer(take(L * C), (l) => `${layer(l)}.post_attention_layernorm.weight`);
  perLayer(take(L * F * C), (l) => `${layer(l)}.mlp.gate_proj.weight`);
  perLayer(take(L * C * F), (l) => `${layer(l)}.mlp.down_proj.weight`);
  perLayer(take(L * F * C), (l) => `${layer(l)}.mlp.up_proj.weight`);
  out.set("model.norm.weight", take(C));
  take(T * HS); // freq_cis_real and freq_cis_imag, (T, HS/2) each: run.c recomputes RoPE
  if (!h.shared) out.set("lm_head.weight", take(V * C));
  return out;
}

/** Number of float32 values after the header. */
function floatCount(h: Llama2cHeader): number {
  const { dim: C, hiddenDim: F, nLayers: L, nHeads: NH, nKvHeads: NKV, vocabSize: V, seqLen: T } = h;
  const HS = C / NH;
  const perLayer = 2 * C + NH * HS * C + 2 * NKV * HS * C + C * NH * HS + 3 * F * C;
  return V * C + L * perLayer + C + T * HS + (h.shared ? 0 : V * C);
}
