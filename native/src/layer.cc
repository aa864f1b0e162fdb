// The parts of the layer recipe (layer.h) that are not templates: RoPE angles, the layer's backward pass, the head.
#include "layer.h"

#include <algorithm>

namespace nrt {

void rope_table(float* cos, float* sin, const int32_t* pos, int N, const Config& c) {
  std::vector<float> inv_freq(c.HS / 2);
  rope_inv_freq(inv_freq.data(), c.HS, c.theta);
  if (c.rope.type == RopeScaling::linear) rope_scale_linear(inv_freq.data(), c.HS, c.rope.factor);
  if (c.rope.type == RopeScaling::llama3)
    rope_scale_llama3(inv_freq.data(), c.HS, c.rope.factor, c.rope.low_freq, c.rope.high_freq, c.rope.orig_max);
  rope_angles_freq(cos, sin, pos, N, c.HS, inv_freq.data());
}

// The backward of layer.h's lora_group: dout (row stride ldd) holds dL/dout, of which target k's columns start at
// col_k; dinp (N, in) and the adapter's gradients ACCUMULATE; tb (N, count R) is scratch. Nothing without targets.
static void lora_group_backward(float* dinp, const float* dout, int ldd, std::initializer_list<int> cols,
                                const float* inp, const LayerActs& t, const LayerWeights<float>& g,
                                const LayerWeights<const float>& w, const Config& c, int group, float* tb, int N) {
  const int g0 = lora_groups[group][0], g1 = lora_groups[group][1];
  int first;
  const int m = lora_group_targets(w, group, &first);
  if (m == 0) return;
  const int R = c.lora.rank, ld = c.lora.count() * R;
  const int* col = cols.begin();
  for (int k = g0; k < g1; k++, col++)
    if (w.lora_a[k])
      lora_up_backward(g.lora_b[k], tb + c.lora.slot(k) * R, ld, dout + *col, ldd, t.lora_u + c.lora.slot(k) * R, ld,
                       w.lora_b[k], N, c.lora_out(k), R, c.lora.scale);
  const int at = c.lora.slot(first) * R;
  lora_down_backward(dinp, g.lora_a[first], tb + at, ld, inp, w.lora_a[first], N, c.lora_in(first), m * R,
                     c.lora.scale);
}

// in the forward pass this was (layer.h):
//   h1 = rmsnorm(x) ; qkv = rope(qknorm(h1 @ Wqkv^T + b)) ; y = attention(qkv) ; xm = x + y @ Wo^T
//   h2 = rmsnorm(xm) ; gu = h2 @ Wgu^T ; a = swiglu(gu) ; x_out = xm + a @ Wdown^T
// so now we have, from dres = dL/dx_out (which is also dL/dxm through the residual):
//   the MLP path into dL/dxm, then the attention path into dL/dx, each kernel's backward in reverse order.
void layer_backward(float* dres, const LayerWeights<float>& g, const LayerActs& t, const float* att,
                    const LayerWeights<const float>& w, const Config& c, const float* cos, const float* sin,
                    const PackedSeqs& seqs, const LayerScratch& s, int N, int window) {
  const int C = c.C, F = c.F, Q = c.Q(), QKV = c.QKV();
  std::fill(s.da, s.da + (size_t)N * F, 0.0f);
  matmul_backward(s.da, g.wdown, dres, t.a, w.wdown, N, F, C);
  lora_group_backward(s.da, dres, C, {0}, t.a, t, g, w, c, 3, s.lora_t, N);
  swiglu_backward_set(s.dgu, s.da, t.gu, N, F);
  std::fill(s.dh, s.dh + (size_t)N * C, 0.0f);
  matmul_backward(s.dh, g.wgu, s.dgu, t.h2, w.wgu, N, C, 2 * F);
  lora_group_backward(s.dh, s.dgu, 2 * F, {0, F}, t.h2, t, g, w, c, 2, s.lora_t, N);
  rmsnorm_backward(dres, g.post_norm, s.dh, t.xm, w.post_norm, t.rstd2, N, C);
  // dres now holds dL/dxm; add the attention path to get dL/dx.
  std::fill(s.dy, s.dy + (size_t)N * Q, 0.0f);
  matmul_backward(s.dy, g.wo, dres, t.y, w.wo, N, Q, C);
  lora_group_backward(s.dy, dres, C, {0}, t.y, t, g, w, c, 1, s.lora_t, N);
  attention_backward_set(s.dqkv, s.dy, att, t.qkv, seqs.seq_start, seqs.att_off, seqs.S, c.NH, c.NKV, c.HS,
                         window);
  rope_backward_table(s.dqkv, cos, sin, N, QKV, 0, c.NH + c.NKV, c.HS);
  if (c.qk_norm) {
    const int QK = Q + c.KV(), NHK = c.NH + c.NKV;
    rmsnorm_heads_backward(s.dqkv, QKV, g.q_norm, t.qk_in, QK, t.qk_rstd, NHK, w.q_norm, N, c.NH, c.HS);
    rmsnorm_heads_backward(s.dqkv + Q, QKV, g.k_norm, t.qk_in + Q, QK, t.qk_rstd + c.NH, NHK, w.k_norm, N, c.NKV,
                           c.HS);
  }
  if (c.qkv_bias && g.bqkv) bias_backward(g.bqkv, s.dqkv, N, QKV);
  std::fill(s.dh, s.dh + (size_t)N * C, 0.0f);
  matmul_backward(s.dh, g.wqkv, s.dqkv, t.h1, w.wqkv, N, C, QKV);
  lora_group_backward(s.dh, s.dqkv, QKV, {0, Q, Q + c.KV()}, t.h1, t, g, w, c, 0, s.lora_t, N);
  rmsnorm_backward(dres, g.in_norm, s.dh, t.x, w.in_norm, t.rstd1, N, C);
}

void head_forward(float* logits, float* hf, float* rstd, const float* x, const Weights<const float>& w,
                  const Config& c, int N) {
  rmsnorm_forward(hf, rstd, x, w.final_norm, N, c.C, c.eps);
  matmul_forward(logits, hf, w.lm_head, N, c.C, c.V, false);
}

void head_backward(float* dx, float* dh, const Weights<float>& g, const float* dlogits, const float* hf,
                   const float* rstd, const float* x, const Weights<const float>& w, const Config& c, int N) {
  std::fill(dh, dh + (size_t)N * c.C, 0.0f);
  matmul_backward(dh, g.lm_head, dlogits, hf, w.lm_head, N, c.C, c.V);
  rmsnorm_backward(dx, g.final_norm, dh, x, w.final_norm, rstd, N, c.C);
}

}  // namespace nrt
