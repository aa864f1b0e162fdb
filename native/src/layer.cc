// The parts of the layer recipe (layer.h) that are not templates: RoPE angles, the layer's backward pass, the head.
#include "layer.h"

#include <algorithm>

namespace nrt {

void rope_table(float* cos, float* sin, const int32_t* pos, int N, const Config& c) {
  rope_angles(cos, sin, pos, N, c.HS, c.theta);
}

// in the forward pass this was (layer.h):
//   h1 = rmsnorm(x) ; qkv = rope(h1 @ Wqkv^T) ; y = attention(qkv) ; xm = x + y @ Wo^T
//   h2 = rmsnorm(xm) ; gu = h2 @ Wgu^T ; a = swiglu(gu) ; x_out = xm + a @ Wdown^T
// so now we have, from dres = dL/dx_out (which is also dL/dxm through the residual):
//   the MLP path into dL/dxm, then the attention path into dL/dx, each kernel's backward in reverse order.
void layer_backward(float* dres, const LayerWeights<float>& g, const LayerActs& t, const float* att,
                    const LayerWeights<const float>& w, const Config& c, const float* cos, const float* sin,
                    const PackedSeqs& seqs, const LayerScratch& s, int N) {
  const int C = c.C, F = c.F, Q = c.Q(), QKV = c.QKV();
  std::fill(s.da, s.da + (size_t)N * F, 0.0f);
  matmul_backward(s.da, g.wdown, dres, t.a, w.wdown, N, F, C);
  swiglu_backward_set(s.dgu, s.da, t.gu, N, F);
  std::fill(s.dh, s.dh + (size_t)N * C, 0.0f);
  matmul_backward(s.dh, g.wgu, s.dgu, t.h2, w.wgu, N, C, 2 * F);
  rmsnorm_backward(dres, g.post_norm, s.dh, t.xm, w.post_norm, t.rstd2, N, C);
  // dres now holds dL/dxm; add the attention path to get dL/dx.
  std::fill(s.dy, s.dy + (size_t)N * Q, 0.0f);
  matmul_backward(s.dy, g.wo, dres, t.y, w.wo, N, Q, C);
  attention_backward_set(s.dqkv, s.dy, att, t.qkv, seqs.seq_start, seqs.att_off, seqs.S, c.NH, c.NKV, c.HS,
                         c.window);
  rope_backward_table(s.dqkv, cos, sin, N, QKV, 0, c.NH + c.NKV, c.HS);
  std::fill(s.dh, s.dh + (size_t)N * C, 0.0f);
  matmul_backward(s.dh, g.wqkv, s.dqkv, t.h1, w.wqkv, N, C, QKV);
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
