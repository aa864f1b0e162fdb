// One transformer layer: the recipe that the training forward (model.cc:model_forward), its backward pass
// (model.cc:model_backward, through layer_backward) and the KV-cached sampler (sampler.cc:forward_cached_chunk) all
// run. Pre-norm Llama block, shapes as in kernels.h:
//   h1 = rmsnorm(x) ; qkv = h1 @ [Wq;Wk;Wv]^T (+ b, Qwen2) ; (per-head rmsnorm of q and k, Qwen3) ; rope(q, k)
//   y = attend(qkv) ; xm = x + y @ Wo^T
//   h2 = rmsnorm(xm) ; gu = h2 @ [Wg;Wu]^T ; a = silu(g) * u ; x_out = xm + a @ Wdown^T
// Only `attend` differs between the paths: causal attention within each packed sequence (training and scoring, which
// keeps the probabilities for backward) or attention over the KV cache (sampling). What a family or an adapter adds
// (q/k/v biases, per-head q/k RMSNorm, LoRA deltas) is a Config option and a step here, so every path gets it at once;
// RoPE variants go into rope_table.
#pragma once
#include <cstring>
#include <vector>

#include "kernels/kernels.h"
#include "model.h"

namespace nrt {

// The tensors one layer writes for N rows. The training forward gives each its own buffer (backward reads them all);
// the sampler points xm and x_out at x and h2/rstd2 at h1/rstd1, updating one residual stream in place.
struct LayerActs {
  const float* x;  // (N, C)   residual stream entering the layer
  float* h1;       // (N, C)   input_layernorm output
  float* rstd1;    // (N)
  float* qkv;      // (N, QKV) projections, q and k rotated
  float* qk_in;    // (N, Q+KV) qk_norm only: q and k before their norm, else null
  float* qk_rstd;  // (N, NH+NKV) qk_norm only: each head's 1/rms, else null
  float* y;        // (N, Q)   attention output before o_proj
  float* xm;       // (N, C)   residual after attention
  float* h2;       // (N, C)   post_attention_layernorm output
  float* rstd2;    // (N)
  float* gu;       // (N, 2F)  gate and up projections
  float* a;        // (N, F)   silu(gate) * up
  float* x_out;    // (N, C)   residual stream leaving the layer
  float* lora_u;   // (N, count R) LoRA only: the targets' A x (target t at columns slot(t) R), else null
};

// Rotary angles, cos and sin (N, HS/2), of each row's position: computed once per pass, shared by every layer.
void rope_table(float* cos, float* sin, const int32_t* pos, int N, const Config& c);

// The adapter's deltas on LoRA group `group`'s projections, which all read `inp` (N, in): the group's blocks of u
// (N, count R) = inp @ [A_k; …]^T in one product, then for each targeted k, out's columns [col_k, col_k + out_k)
// (row stride ldo) += scale * u_k @ B_k^T; cols lists col_k for every member of the group. Nothing without targets.
// How many of group `group`'s projections the adapter targets, and the first of them (-1 if none).
inline int lora_group_targets(const LayerWeights<const float>& w, int group, int* first) {
  int m = 0;
  *first = -1;
  for (int k = lora_groups[group][0]; k < lora_groups[group][1]; k++)
    if (w.lora_a[k]) *first = *first < 0 ? k : *first, m++;
  return m;
}

inline void lora_group(float* out, int ldo, std::initializer_list<int> cols, const float* inp, float* u,
                       const LayerWeights<const float>& w, const Config& c, int group, int N) {
  const int g0 = lora_groups[group][0], g1 = lora_groups[group][1];
  int first;
  const int m = lora_group_targets(w, group, &first);
  if (m == 0) return;
  const int R = c.lora.rank, ldu = c.lora.count() * R;
  lora_down(u + c.lora.slot(first) * R, ldu, inp, w.lora_a[first], N, c.lora_in(first), m * R);
  const int* col = cols.begin();
  for (int k = g0; k < g1; k++, col++)
    if (w.lora_a[k])
      lora_up(out + *col, ldo, u + c.lora.slot(k) * R, ldu, w.lora_b[k], N, c.lora_out(k), R, c.lora.scale);
}

// attend(y, qkv): y (N, Q) from the rotated qkv (N, QKV) rows of this layer.
template <class Attend>
void layer_forward(const LayerActs& t, const LayerWeights<const float>& w, const Config& c, const float* cos,
                   const float* sin, int N, Attend&& attend) {
  const int C = c.C, F = c.F, Q = c.Q(), QKV = c.QKV();
  rmsnorm_forward(t.h1, t.rstd1, t.x, w.in_norm, N, C, c.eps);
  matmul_forward(t.qkv, t.h1, w.wqkv, N, C, QKV, false);
  lora_group(t.qkv, QKV, {0, Q, Q + c.KV()}, t.h1, t.lora_u, w, c, 0, N);
  if (c.qkv_bias) bias_forward(t.qkv, w.bqkv, N, QKV);
  if (c.qk_norm) {
    const int QK = Q + c.KV(), NHK = c.NH + c.NKV;
    rmsnorm_heads_forward(t.qkv, QKV, t.qk_in, QK, t.qk_rstd, NHK, w.q_norm, N, c.NH, c.HS, c.eps);
    rmsnorm_heads_forward(t.qkv + Q, QKV, t.qk_in + Q, QK, t.qk_rstd + c.NH, NHK, w.k_norm, N, c.NKV, c.HS, c.eps);
  }
  rope_forward_table(t.qkv, cos, sin, N, QKV, 0, c.NH + c.NKV, c.HS);
  attend(t.y, (const float*)t.qkv);
  if (t.xm != t.x) std::memcpy(t.xm, t.x, sizeof(float) * N * C);
  matmul_forward(t.xm, t.y, w.wo, N, Q, C, true);
  lora_group(t.xm, C, {0}, t.y, t.lora_u, w, c, 1, N);
  rmsnorm_forward(t.h2, t.rstd2, t.xm, w.post_norm, N, C, c.eps);
  matmul_forward(t.gu, t.h2, w.wgu, N, C, 2 * F, false);
  lora_group(t.gu, 2 * F, {0, F}, t.h2, t.lora_u, w, c, 2, N);
  swiglu_forward(t.a, t.gu, N, F);
  if (t.x_out != t.xm) std::memcpy(t.x_out, t.xm, sizeof(float) * N * C);
  matmul_forward(t.x_out, t.a, w.wdown, N, F, C, true);
  lora_group(t.x_out, C, {0}, t.a, t.lora_u, w, c, 3, N);
}

// Packed sequences as the training attention sees them: seq_start (S+1) token offsets, att the per-sequence softmax
// probabilities of one layer (NH, T_s, T_s) at att_off[s].
struct PackedSeqs {
  const int32_t* seq_start;
  const int64_t* att_off;
  int S;
};

// Scratch gradients of one layer's backward, reused across layers: (N,C) dh; (N,F) da; (N,2F) dgu; (N,Q) dy;
// (N,QKV) dqkv; (N, count R) lora_t. Their contents on entry do not matter.
struct LayerScratch {
  float *dh, *da, *dgu, *dy, *dqkv, *lora_t;
};

// The backward of layer_forward with packed attention (att: this layer's probabilities, window its sliding window).
// dres holds dL/dx_out on entry and dL/dx on return; the weight gradients ACCUMULATE into g (the adapter's alone
// when g's base views are null: a frozen base).
void layer_backward(float* dres, const LayerWeights<float>& g, const LayerActs& t, const float* att,
                    const LayerWeights<const float>& w, const Config& c, const float* cos, const float* sin,
                    const PackedSeqs& seqs, const LayerScratch& s, int N, int window);

// The head: hf = rmsnorm(x) (rstd saved), logits (N, V) = hf @ lm_head^T.
void head_forward(float* logits, float* hf, float* rstd, const float* x, const Weights<const float>& w,
                  const Config& c, int N);
// Its backward: dlogits (N, V) in; dx (N, C) and the final norm's and lm_head's gradients ACCUMULATE; dh (N, C) is
// scratch.
void head_backward(float* dx, float* dh, const Weights<float>& g, const float* dlogits, const float* hf,
                   const float* rstd, const float* x, const Weights<const float>& w, const Config& c, int N);

}  // namespace nrt
