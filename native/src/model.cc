// The parameter table, its named views, and the forward and backward passes over packed sequences:
//   x0 = embed[tokens] ; x_{l+1} = layer_l(x_l) (layer.h, with causal attention within each sequence)
//   logits = rmsnorm(x_L) @ Wlm^T   (Wlm = embed when tied)
#include "model.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <unordered_map>

#include <cblas.h>

#include "kernels/kernels.h"
#include "layer.h"

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
    if (c.qkv_bias) {
      add(p + "self_attn.q_proj.bias", {c.Q()}, false);
      add(p + "self_attn.k_proj.bias", {c.KV()}, false);
      add(p + "self_attn.v_proj.bias", {c.KV()}, false);
    }
    if (c.qk_norm) {
      add(p + "self_attn.q_norm.weight", {c.HS}, false);
      add(p + "self_attn.k_norm.weight", {c.HS}, false);
    }
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

const char* const lora_target_names[n_lora_targets] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                       "gate_proj", "up_proj", "down_proj"};

std::vector<ParamInfo> lora_table(const Config& c) {
  std::vector<ParamInfo> t;
  if (c.lora.rank <= 0) return t;
  const int64_t R = c.lora.rank;
  int64_t off = 0;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    t.push_back({name, shape, off, shape[0] * shape[1], true});
    off += shape[0] * shape[1];
  };
  for (int l = 0; l < c.L; l++)
    for (const auto& g : lora_groups) {
      auto name = [&](int k) {
        return "base_model.model.model.layers." + std::to_string(l) + (k <= o_proj ? ".self_attn." : ".mlp.") +
               lora_target_names[k];
      };
      // the group's A matrices side by side, then its B matrices
      for (int k = g[0]; k < g[1]; k++)
        if (c.lora.on(k)) add(name(k) + ".lora_A.weight", {R, c.lora_in(k)});
      for (int k = g[0]; k < g[1]; k++)
        if (c.lora.on(k)) add(name(k) + ".lora_B.weight", {c.lora_out(k), R});
    }
  return t;
}

int64_t lora_count(const Config& c) {
  auto t = lora_table(c);
  return t.empty() ? 0 : t.back().offset + t.back().size;
}

void lora_merge(const Config& c, float* base, const float* lora) {
  const auto table = param_table(c);
  std::unordered_map<std::string, int64_t> at;
  for (const auto& p : table) at[p.name] = p.offset;
  const int R = c.lora.rank;
  const Weights<const float> w = weights(c, Params{nullptr, lora});
  for (int l = 0; l < c.L; l++)
    for (int k = 0; k < n_lora_targets; k++) {
      if (!c.lora.on(k)) continue;
      const std::string name = "model.layers." + std::to_string(l) + (k <= o_proj ? ".self_attn." : ".mlp.") +
                               lora_target_names[k] + ".weight";
      const int out = c.lora_out(k), in = c.lora_in(k);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out, in, R, c.lora.scale, w.layers[l].lora_b[k], R,
                  w.layers[l].lora_a[k], in, 1.0f, base + at.at(name), in);
    }
}

std::vector<ParamInfo> trainable_table(const Config& c) { return c.lora.rank > 0 ? lora_table(c) : param_table(c); }

// Finds the tensors by name: the order of the table is known to param_table alone.
template <class T>
static Weights<T> views(const Config& c, Buffers<T> bufs) {
  Weights<T> w{};
  w.layers.resize(c.L, LayerWeights<T>{});
  if (bufs.lora) {
    std::unordered_map<std::string, const ParamInfo*> at;
    const auto lt = lora_table(c);
    for (const auto& p : lt) at[p.name] = &p;
    for (int l = 0; l < c.L; l++)
      for (const auto& g : lora_groups) {
        const ParamInfo* prev = nullptr;
        for (int k = g[0]; k < g[1]; k++) {
          if (!c.lora.on(k)) continue;
          const std::string p = "base_model.model.model.layers." + std::to_string(l) +
                                (k <= o_proj ? ".self_attn." : ".mlp.") + lora_target_names[k];
          const ParamInfo& a = *at.at(p + ".lora_A.weight");
          // one product reads a group's A matrices as one: each must start where the one before ends
          if (prev && a.offset != prev->offset + prev->size) throw std::runtime_error(a.name + " does not follow its group");
          prev = &a;
          w.layers[l].lora_a[k] = bufs.lora + a.offset;
          w.layers[l].lora_b[k] = bufs.lora + at.at(p + ".lora_B.weight")->offset;
        }
      }
  }
  T* const base = bufs.base;
  if (!base) return w;  // frozen: no base views
  const auto table = param_table(c);
  std::unordered_map<std::string, const ParamInfo*> by_name;
  for (const auto& p : table) by_name[p.name] = &p;
  auto find = [&](const std::string& name) -> const ParamInfo& {
    auto it = by_name.find(name);
    if (it == by_name.end()) throw std::runtime_error("no parameter named " + name);
    return *it->second;
  };
  // the first of tensors that one matmul reads as a single matrix: each must start where the one before ends
  auto fused = [&](std::initializer_list<std::string> names) {
    const ParamInfo* prev = nullptr;
    for (const auto& n : names) {
      const ParamInfo& p = find(n);
      if (prev && p.offset != prev->offset + prev->size) throw std::runtime_error(n + " does not follow its pair");
      prev = &p;
    }
    return base + find(*names.begin()).offset;
  };
  w.embed = base + find("model.embed_tokens.weight").offset;
  for (int l = 0; l < c.L; l++) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    auto opt = [&](bool on, const std::string& name) -> T* { return on ? base + find(name).offset : nullptr; };
    LayerWeights<T>& lw = w.layers[l];  // its adapter views are set above
    lw.in_norm = base + find(p + "input_layernorm.weight").offset;
    lw.wqkv = fused({p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight", p + "self_attn.v_proj.weight"});
    lw.bqkv = c.qkv_bias
                  ? fused({p + "self_attn.q_proj.bias", p + "self_attn.k_proj.bias", p + "self_attn.v_proj.bias"})
                  : nullptr;
    lw.q_norm = opt(c.qk_norm, p + "self_attn.q_norm.weight");
    lw.k_norm = opt(c.qk_norm, p + "self_attn.k_norm.weight");
    lw.wo = base + find(p + "self_attn.o_proj.weight").offset;
    lw.post_norm = base + find(p + "post_attention_layernorm.weight").offset;
    lw.wgu = fused({p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"});
    lw.wdown = base + find(p + "mlp.down_proj.weight").offset;
  }
  w.final_norm = base + find("model.norm.weight").offset;
  w.lm_head = c.tied ? w.embed : base + find("lm_head.weight").offset;
  return w;
}
Weights<const float> weights(const Config& c, Params b) { return views(c, b); }
Weights<float> weights(const Config& c, Grads b) { return views(c, b); }

static void resize(std::vector<float>& v, size_t n) {
  if (v.size() != n) v.assign(n, 0.0f);
}

// Layer l's slice of the saved activations.
static LayerActs layer_acts(Activations& A, const Config& c, int l) {
  const size_t N = A.N, C = c.C, F = c.F;
  float* qk_in = c.qk_norm ? A.qk_in.data() + l * N * (c.Q() + c.KV()) : nullptr;
  float* qk_rstd = c.qk_norm ? A.qk_rstd.data() + l * N * (c.NH + c.NKV) : nullptr;
  return {A.x.data() + l * N * C,      A.h1.data() + l * N * C, A.rstd1.data() + l * N,
          A.qkv.data() + l * N * c.QKV(), qk_in, qk_rstd, A.y.data() + l * N * c.Q(), A.xm.data() + l * N * C,
          A.h2.data() + l * N * C,     A.rstd2.data() + l * N,  A.gu.data() + l * N * 2 * F,
          A.a.data() + l * N * F,      A.x.data() + (l + 1) * N * C,
          c.lora.rank > 0 ? A.lora_u.data() + l * N * c.lora.count() * c.lora.rank : nullptr};
}

void model_forward(Activations& A, const Config& c, Params P, const int32_t* tokens, const int32_t* seq_lens, int S) {
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
  resize(A.qk_in, c.qk_norm ? (size_t)L * N * (Q + c.KV()) : 0);
  resize(A.qk_rstd, c.qk_norm ? (size_t)L * N * (c.NH + c.NKV) : 0);
  resize(A.att, (size_t)L * AT);
  resize(A.y, (size_t)L * N * Q);
  resize(A.xm, (size_t)L * N * C);
  resize(A.h2, (size_t)L * N * C);
  resize(A.rstd2, (size_t)L * N);
  resize(A.gu, (size_t)L * N * 2 * F);
  resize(A.a, (size_t)L * N * F);
  resize(A.lora_u, (size_t)L * N * c.lora.count() * c.lora.rank);
  resize(A.hf, (size_t)N * C);
  resize(A.rstdf, N);
  resize(A.logits, (size_t)N * V);
  resize(A.lse, N);
  resize(A.logp, N);
  resize(A.ent, N);
  resize(A.rope_cos, (size_t)N * (c.HS / 2));
  resize(A.rope_sin, (size_t)N * (c.HS / 2));
  rope_table(A.rope_cos.data(), A.rope_sin.data(), A.pos.data(), N, c);
  const Weights<const float> w = weights(c, P);

  embedding_forward(A.x.data(), tokens, w.embed, N, C);
  for (int l = 0; l < L; l++) {
    float* att = A.att.data() + (size_t)l * AT;
    layer_forward(layer_acts(A, c, l), w.layers[l], c, A.rope_cos.data(), A.rope_sin.data(), N,
                  [&](float* y, const float* qkv) {
                    attention_forward(y, att, qkv, A.seq_start.data(), A.att_off.data(), S, c.NH, c.NKV, c.HS,
                                      c.window_at(l));
                  });
  }
  head_forward(A.logits.data(), A.hf.data(), A.rstdf.data(), A.x.data() + (size_t)L * N * C, w, c, N);
  xent_forward(A.lse.data(), A.logp.data(), A.ent.data(), A.logits.data(), A.target.data(), N, V);
  A.has_logits_grad = false;
}

double model_backward(Activations& A, const Config& c, Params P, Grads G, const float* row_w) {
  if (A.has_logits_grad) throw std::runtime_error("backward called twice on one forward pass");
  const int N = A.N, C = c.C, F = c.F, V = c.V, Q = c.Q(), QKV = c.QKV(), L = c.L;
  const int64_t AT = A.att_off[A.S];
  const Weights<const float> w = weights(c, P);
  const Weights<float> g = weights(c, G);
  double loss = 0.0;
  for (int n = 0; n < N; n++)
    if (A.target[n] >= 0) loss -= (double)row_w[n] * A.logp[n];

  xent_backward_inplace(A.logits.data(), A.lse.data(), A.target.data(), row_w, N, V);
  A.has_logits_grad = true;
  resize(A.dh, (size_t)N * C);
  A.dres.assign((size_t)N * C, 0.0f);
  resize(A.da, (size_t)N * F);
  resize(A.dgu, (size_t)N * 2 * F);
  resize(A.dy, (size_t)N * Q);
  resize(A.dqkv, (size_t)N * QKV);
  resize(A.lora_t, (size_t)N * c.lora.count() * c.lora.rank);
  float* dres = A.dres.data();
  head_backward(dres, A.dh.data(), g, A.logits.data(), A.hf.data(), A.rstdf.data(), A.x.data() + (size_t)L * N * C,
                w, c, N);
  const LayerScratch scratch{A.dh.data(), A.da.data(), A.dgu.data(), A.dy.data(), A.dqkv.data(), A.lora_t.data()};
  const PackedSeqs seqs{A.seq_start.data(), A.att_off.data(), A.S};
  for (int l = L - 1; l >= 0; l--)
    layer_backward(dres, g.layers[l], layer_acts(A, c, l), A.att.data() + (size_t)l * AT, w.layers[l], c,
                   A.rope_cos.data(), A.rope_sin.data(), seqs, scratch, N, c.window_at(l));
  if (g.embed) embedding_backward(g.embed, dres, A.tokens.data(), N, C);
  return loss;
}

}  // namespace nrt
