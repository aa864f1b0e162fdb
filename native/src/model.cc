// Llama forward and backward over packed sequences. Layer by layer:
//   x0 = embed[tokens]
//   h1 = rmsnorm(x_l) ; qkv = h1 @ [Wq;Wk;Wv]^T ; rope(q, k) ; y = attention(qkv) ; xm = x_l + y @ Wo^T
//   h2 = rmsnorm(xm)  ; gu = h2 @ [Wg;Wu]^T ; a = silu(g) * u ; x_{l+1} = xm + a @ Wd^T
//   logits = rmsnorm(x_L) @ Wlm^T   (Wlm = embed when tied)
#include "model.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "kernels/kernels.h"

namespace nrt {

std::vector<ParamInfo> param_table(const Config& c) {
  std::vector<ParamInfo> t;
  int64_t off = 0;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool decay) {
    int64_t size = 1;
    for (auto d : shape) size *= d;
    t.push_back({name, shape, off, size, decay});
    off += size;
  };
  add("model.embed_tokens.weight", {c.V, c.C}, true);
  for (int l = 0; l < c.L; l++) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {c.C}, false);
    add(p + "self_attn.q_proj.weight", {c.Q(), c.C}, true);
    add(p + "self_attn.k_proj.weight", {c.KV(), c.C}, true);
    add(p + "self_attn.v_proj.weight", {c.KV(), c.C}, true);
    add(p + "self_attn.o_proj.weight", {c.C, c.Q()}, true);
    add(p + "post_attention_layernorm.weight", {c.C}, false);
    add(p + "mlp.gate_proj.weight", {c.F, c.C}, true);
    add(p + "mlp.up_proj.weight", {c.F, c.C}, true);
    add(p + "mlp.down_proj.weight", {c.C, c.F}, true);
  }
  add("model.norm.weight", {c.C}, false);
  if (!c.tied) add("lm_head.weight", {c.V, c.C}, true);
  return t;
}

int64_t param_count(const Config& c) {
  auto t = param_table(c);
  return t.back().offset + t.back().size;
}

Offsets offsets(const Config& c) {
  auto t = param_table(c);
  Offsets o;
  o.embed = t[0].offset;
  for (int l = 0; l < c.L; l++) {
    const ParamInfo* r = &t[1 + 9 * l];
    o.layers.push_back({r[0].offset, r[1].offset, r[4].offset, r[5].offset, r[6].offset, r[8].offset});
  }
  o.final_norm = t[1 + 9 * c.L].offset;
  o.lm_head = c.tied ? o.embed : t[2 + 9 * c.L].offset;
  return o;
}

static void resize(std::vector<float>& v, size_t n) {
  if (v.size() != n) v.assign(n, 0.0f);
}

void model_forward(Activations& A, const Config& c, const float* P, const int32_t* tokens, const int32_t* seq_lens,
                   int S) {
  const int C = c.C, F = c.F, V = c.V, Q = c.Q(), QKV = c.QKV(), L = c.L;
  A.S = S;
  A.seq_start.assign(S + 1, 0);
  A.att_off.assign(S + 1, 0);
  for (int s = 0; s < S; s++) {
    A.seq_start[s + 1] = A.seq_start[s] + seq_lens[s];
    A.att_off[s + 1] = A.att_off[s] + (int64_t)c.NH * seq_lens[s] * seq_lens[s];
  }
  const int N = A.N = A.seq_start[S];
  A.tokens.assign(tokens, tokens + N);
  A.pos.resize(N);
  A.target.resize(N);
  for (int s = 0; s < S; s++)
    for (int i = A.seq_start[s]; i < A.seq_start[s + 1]; i++) {
      A.pos[i] = i - A.seq_start[s];
      A.target[i] = i + 1 < A.seq_start[s + 1] ? tokens[i + 1] : -1;
    }
  const int64_t AT = A.att_off[S];
  resize(A.x, (size_t)(L + 1) * N * C);
  resize(A.h1, (size_t)L * N * C);
  resize(A.rstd1, (size_t)L * N);
  resize(A.qkv, (size_t)L * N * QKV);
  resize(A.att, (size_t)L * AT);
  resize(A.y, (size_t)L * N * Q);
  resize(A.xm, (size_t)L * N * C);
  resize(A.h2, (size_t)L * N * C);
  resize(A.rstd2, (size_t)L * N);
  resize(A.gu, (size_t)L * N * 2 * F);
  resize(A.a, (size_t)L * N * F);
  resize(A.hf, (size_t)N * C);
  resize(A.rstdf, N);
  resize(A.logits, (size_t)N * V);
  resize(A.lse, N);
  resize(A.logp, N);
  resize(A.ent, N);
  resize(A.rope_cos, (size_t)N * (c.HS / 2));
  resize(A.rope_sin, (size_t)N * (c.HS / 2));
  rope_angles(A.rope_cos.data(), A.rope_sin.data(), A.pos.data(), N, c.HS, c.theta);
  const Offsets o = offsets(c);

  embedding_forward(A.x.data(), tokens, P + o.embed, N, C);
  for (int l = 0; l < L; l++) {
    const LayerOffsets& lo = o.layers[l];
    float* x = A.x.data() + (size_t)l * N * C;
    float* h1 = A.h1.data() + (size_t)l * N * C;
    float* qkv = A.qkv.data() + (size_t)l * N * QKV;
    float* y = A.y.data() + (size_t)l * N * Q;
    float* xm = A.xm.data() + (size_t)l * N * C;
    float* h2 = A.h2.data() + (size_t)l * N * C;
    float* gu = A.gu.data() + (size_t)l * N * 2 * F;
    float* a = A.a.data() + (size_t)l * N * F;
    rmsnorm_forward(h1, A.rstd1.data() + (size_t)l * N, x, P + lo.in_norm, N, C, c.eps);
    matmul_forward(qkv, h1, P + lo.wqkv, N, C, QKV, false);
    rope_forward_table(qkv, A.rope_cos.data(), A.rope_sin.data(), N, QKV, 0, c.NH + c.NKV, c.HS);
    attention_forward(y, A.att.data() + (size_t)l * AT, qkv, A.seq_start.data(), A.att_off.data(), S, c.NH, c.NKV,
                      c.HS, c.window);
    std::memcpy(xm, x, sizeof(float) * N * C);
    matmul_forward(xm, y, P + lo.wo, N, Q, C, true);
    rmsnorm_forward(h2, A.rstd2.data() + (size_t)l * N, xm, P + lo.post_norm, N, C, c.eps);
    matmul_forward(gu, h2, P + lo.wgu, N, C, 2 * F, false);
    swiglu_forward(a, gu, N, F);
    float* xn = A.x.data() + (size_t)(l + 1) * N * C;
    std::memcpy(xn, xm, sizeof(float) * N * C);
    matmul_forward(xn, a, P + lo.wdown, N, F, C, true);
  }
  rmsnorm_forward(A.hf.data(), A.rstdf.data(), A.x.data() + (size_t)L * N * C, P + o.final_norm, N, C, c.eps);
  matmul_forward(A.logits.data(), A.hf.data(), P + o.lm_head, N, C, V, false);
  xent_forward(A.lse.data(), A.logp.data(), A.ent.data(), A.logits.data(), A.target.data(), N, V);
  A.has_logits_grad = false;
}

double model_backward(Activations& A, const Config& c, const float* P, float* G, const float* row_w) {
  if (A.has_logits_grad) throw std::runtime_error("backward called twice on one forward pass");
  const int N = A.N, C = c.C, F = c.F, V = c.V, Q = c.Q(), QKV = c.QKV(), L = c.L;
  const int64_t AT = A.att_off[A.S];
  const Offsets o = offsets(c);
  double loss = 0.0;
  for (int n = 0; n < N; n++)
    if (A.target[n] >= 0) loss -= (double)row_w[n] * A.logp[n];

  xent_backward_inplace(A.logits.data(), A.lse.data(), A.target.data(), row_w, N, V);
  A.has_logits_grad = true;
  std::vector<float>&dh = A.dh, &dres = A.dres, &da = A.da, &dgu = A.dgu, &dy = A.dy, &dqkv = A.dqkv;
  dh.assign((size_t)N * C, 0.0f);
  dres.assign((size_t)N * C, 0.0f);
  resize(da, (size_t)N * F);
  resize(dgu, (size_t)N * 2 * F);
  resize(dy, (size_t)N * Q);
  resize(dqkv, (size_t)N * QKV);
  matmul_backward(dh.data(), G + o.lm_head, A.logits.data(), A.hf.data(), P + o.lm_head, N, C, V);
  rmsnorm_backward(dres.data(), G + o.final_norm, dh.data(), A.x.data() + (size_t)L * N * C, P + o.final_norm,
                   A.rstdf.data(), N, C);

  for (int l = L - 1; l >= 0; l--) {
    const LayerOffsets& lo = o.layers[l];
    const float* x = A.x.data() + (size_t)l * N * C;
    const float* h1 = A.h1.data() + (size_t)l * N * C;
    const float* qkv = A.qkv.data() + (size_t)l * N * QKV;
    const float* y = A.y.data() + (size_t)l * N * Q;
    const float* xm = A.xm.data() + (size_t)l * N * C;
    const float* h2 = A.h2.data() + (size_t)l * N * C;
    const float* gu = A.gu.data() + (size_t)l * N * 2 * F;
    const float* a = A.a.data() + (size_t)l * N * F;
    // dres holds dL/dx_{l+1} = dL/dxm through the residual; add the MLP path.
    std::fill(da.begin(), da.end(), 0.0f);
    matmul_backward(da.data(), G + lo.wdown, dres.data(), a, P + lo.wdown, N, F, C);
    swiglu_backward_set(dgu.data(), da.data(), gu, N, F);
    std::fill(dh.begin(), dh.end(), 0.0f);
    matmul_backward(dh.data(), G + lo.wgu, dgu.data(), h2, P + lo.wgu, N, C, 2 * F);
    rmsnorm_backward(dres.data(), G + lo.post_norm, dh.data(), xm, P + lo.post_norm, A.rstd2.data() + (size_t)l * N, N,
                     C);
    // dres now holds dL/dxm; add the attention path to get dL/dx_l.
    std::fill(dy.begin(), dy.end(), 0.0f);
    matmul_backward(dy.data(), G + lo.wo, dres.data(), y, P + lo.wo, N, Q, C);
    attention_backward_set(dqkv.data(), dy.data(), A.att.data() + (size_t)l * AT, qkv, A.seq_start.data(),
                       A.att_off.data(), A.S, c.NH, c.NKV, c.HS, c.window);
    rope_backward_table(dqkv.data(), A.rope_cos.data(), A.rope_sin.data(), N, QKV, 0, c.NH + c.NKV, c.HS);
    std::fill(dh.begin(), dh.end(), 0.0f);
    matmul_backward(dh.data(), G + lo.wqkv, dqkv.data(), h1, P + lo.wqkv, N, C, QKV);
    rmsnorm_backward(dres.data(), G + lo.in_norm, dh.data(), x, P + lo.in_norm, A.rstd1.data() + (size_t)l * N, N, C);
  }
  embedding_backward(G + o.embed, dres.data(), A.tokens.data(), N, C);
  return loss;
}

}  // namespace nrt
