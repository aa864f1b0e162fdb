// Inference with a KV cache: a cached forward pass for any mix of (token, stream, position), and batched
// sampling with temperature, top-k and top-p, seeded per stream.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>

#include "kernels/kernels.h"
#include "kernels/vecmath.h"
#include "model.h"

namespace nrt {

void kvcache_init(KVCache& kv, const Config& c, int B, int T) {
  kv.B = B;
  kv.T = T;
  kv.S = c.window > 0 && 2 * c.window < T ? 2 * c.window : T;
  kv.k.assign((size_t)c.L * B * kv.S * c.KV(), 0.0f);
  kv.v.assign((size_t)c.L * B * kv.S * c.KV(), 0.0f);
}

static void grow(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// tokens(n) at (stream(n), pos(n)); cache (L, B, T, KV); logits (n_out, V) for rows out_rows(n_out)
// Attention per (token, query head) over its stream's cached positions: with AVX2 and HS % 8 == 0, 8-wide dot
// products, vecmath's exp and a register-accumulated weighted sum of V rows; otherwise plain loops.
static void forward_cached_chunk(float* logits, KVCache& kv, const Config& c, const float* P, const int32_t* tokens,
                                 const int32_t* stream, const int32_t* pos, int n, const int32_t* out_rows,
                                 int n_out) {
  const int C = c.C, F = c.F, Q = c.Q(), KV = c.KV(), QKV = c.QKV(), HS = c.HS, group = c.NH / c.NKV;
  const float scale = 1.0f / std::sqrt((float)HS);
  for (int i = 0; i < n; i++)
    if (pos[i] >= kv.T || stream[i] >= kv.B) throw std::runtime_error("position beyond the KV cache");
  const Offsets o = offsets(c);
  grow(kv.x, (size_t)n * C);
  grow(kv.h, (size_t)n * C);
  grow(kv.rstd, n);
  grow(kv.qkv, (size_t)n * QKV);
  grow(kv.y, (size_t)n * Q);
  grow(kv.gu, (size_t)n * 2 * F);
  grow(kv.a, (size_t)n * F);
  grow(kv.rope_cos, (size_t)n * (HS / 2));
  grow(kv.rope_sin, (size_t)n * (HS / 2));
  float *x = kv.x.data(), *h = kv.h.data(), *rstd = kv.rstd.data(), *qkv = kv.qkv.data(), *y = kv.y.data(),
        *gu = kv.gu.data(), *a = kv.a.data();
  rope_angles(kv.rope_cos.data(), kv.rope_sin.data(), pos, n, HS, c.theta);
  embedding_forward(x, tokens, P + o.embed, n, C);
  for (int l = 0; l < c.L; l++) {
    const LayerOffsets& lo = o.layers[l];
    float* K = kv.k.data() + (size_t)l * kv.B * kv.S * KV;
    float* Vc = kv.v.data() + (size_t)l * kv.B * kv.S * KV;
    rmsnorm_forward(h, rstd, x, P + lo.in_norm, n, C, c.eps);
    matmul_forward(qkv, h, P + lo.wqkv, n, C, QKV, false);
    rope_forward_table(qkv, kv.rope_cos.data(), kv.rope_sin.data(), n, QKV, 0, c.NH + c.NKV, HS);
    for (int i = 0; i < n; i++) {
      size_t at = ((size_t)stream[i] * kv.S + pos[i] % kv.S) * KV;
      std::memcpy(K + at, qkv + (size_t)i * QKV + Q, sizeof(float) * KV);
      std::memcpy(Vc + at, qkv + (size_t)i * QKV + Q + KV, sizeof(float) * KV);
    }
#pragma omp parallel
    {
      std::vector<float> p(kv.T);
#pragma omp for schedule(static) collapse(2)
      for (int i = 0; i < n; i++)
        for (int hh = 0; hh < c.NH; hh++) {
          const int kvh = hh / group, pi = pos[i];
          const int lo_j = c.window > 0 && pi - c.window + 1 > 0 ? pi - c.window + 1 : 0, m = pi + 1 - lo_j;
          const float* q = qkv + (size_t)i * QKV + hh * HS;
          const float* Ks = K + (size_t)stream[i] * kv.S * KV + kvh * HS;
          const float* Vs = Vc + (size_t)stream[i] * kv.S * KV + kvh * HS;
          float* yo = y + (size_t)i * Q + hh * HS;
          if (kv.S < kv.T) {  // ring of S slots: plain loops over position j in slot j % S
            float mx = -INFINITY;
            for (int j = lo_j; j <= pi; j++) {
              const float* kr = Ks + (size_t)(j % kv.S) * KV;
              float d = 0.0f;
              for (int e = 0; e < HS; e++) d += q[e] * kr[e];
              p[j] = d * scale;
              mx = std::max(mx, p[j]);
            }
            float sum = 0.0f;
            for (int j = lo_j; j <= pi; j++) sum += (p[j] = std::exp(p[j] - mx));
            for (int e = 0; e < HS; e++) yo[e] = 0.0f;
            for (int j = lo_j; j <= pi; j++) {
              const float w = p[j] / sum;
              const float* vr = Vs + (size_t)(j % kv.S) * KV;
              for (int e = 0; e < HS; e++) yo[e] += w * vr[e];
            }
            continue;
          }
#ifdef NRT_AVX2
          if (HS % 8 == 0) {
            int j = lo_j;
            for (; j + 8 <= pi + 1; j += 8)
              _mm256_storeu_ps(p.data() + j,
                               _mm256_mul_ps(dot8_rows8(q, Ks + (size_t)j * KV, KV, HS), _mm256_set1_ps(scale)));
            for (; j <= pi; j++) p[j] = dot8(q, Ks + (size_t)j * KV, HS) * scale;
            const float mx = max_of(p.data() + lo_j, m);
            const float inv = 1.0f / exp_shift_sum(p.data() + lo_j, p.data() + lo_j, mx, m);
            for (int j = lo_j; j <= pi; j++) p[j] *= inv;
            wsum_rows(yo, p.data(), 1, Vs, KV, lo_j, pi, HS, false);
            continue;
          }
#endif
          float mx = -INFINITY;
          for (int j = lo_j; j <= pi; j++) {
            float d = 0.0f;
            for (int e = 0; e < HS; e++) d += q[e] * Ks[(size_t)j * KV + e];
            p[j] = d * scale;
            mx = std::max(mx, p[j]);
          }
          float sum = 0.0f;
          for (int j = lo_j; j <= pi; j++) {
            p[j] = std::exp(p[j] - mx);
            sum += p[j];
          }
          for (int e = 0; e < HS; e++) yo[e] = 0.0f;
          for (int j = lo_j; j <= pi; j++) {
            const float w = p[j] / sum;
            for (int e = 0; e < HS; e++) yo[e] += w * Vs[(size_t)j * KV + e];
          }
        }
    }
    matmul_forward(x, y, P + lo.wo, n, Q, C, true);
    rmsnorm_forward(h, rstd, x, P + lo.post_norm, n, C, c.eps);
    matmul_forward(gu, h, P + lo.wgu, n, C, 2 * F, false);
    swiglu_forward(a, gu, n, F);
    matmul_forward(x, a, P + lo.wdown, n, F, C, true);
  }
  // the final norm and lm_head only for the rows asked for
  grow(kv.xo, (size_t)n_out * C);
  grow(kv.ho, (size_t)n_out * C);
  grow(kv.ro, n_out);
  for (int r = 0; r < n_out; r++)
    std::memcpy(kv.xo.data() + (size_t)r * C, x + (size_t)out_rows[r] * C, sizeof(float) * C);
  rmsnorm_forward(kv.ho.data(), kv.ro.data(), kv.xo.data(), P + o.final_norm, n_out, C, c.eps);
  matmul_forward(logits, kv.ho.data(), P + o.lm_head, n_out, C, c.V, false);
}

// With a ring of S slots, the tokens of one pass may span at most S - W + 1 positions (a key is overwritten
// only once no query of the pass can still see it), so a longer pass (a long prompt) is run in position chunks.
void model_forward_cached(float* logits, KVCache& kv, const Config& c, const float* P, const int32_t* tokens,
                          const int32_t* stream, const int32_t* pos, int n, const int32_t* out_rows, int n_out) {
  int lo = 0, hi = 0;
  for (int i = 0; i < n; i++) lo = i == 0 ? pos[i] : std::min(lo, pos[i]), hi = i == 0 ? pos[i] : std::max(hi, pos[i]);
  const int span = kv.S - c.window + 1;
  if (kv.S == kv.T || n == 0 || hi - lo < span) {
    forward_cached_chunk(logits, kv, c, P, tokens, stream, pos, n, out_rows, n_out);
    return;
  }
  std::vector<int32_t> where(n, -1);  // logits row of each token, if asked for
  for (int r = 0; r < n_out; r++) where[out_rows[r]] = r;
  std::vector<int32_t> tk, st, ps, rows, dest;
  std::vector<float> out;
  for (int from = lo; from <= hi; from += span) {
    tk.clear(), st.clear(), ps.clear(), rows.clear(), dest.clear();
    for (int i = 0; i < n; i++)
      if (pos[i] >= from && pos[i] < from + span) {
        if (where[i] >= 0) rows.push_back((int32_t)tk.size()), dest.push_back(where[i]);
        tk.push_back(tokens[i]), st.push_back(stream[i]), ps.push_back(pos[i]);
      }
    if (tk.empty()) continue;
    out.resize(rows.size() * (size_t)c.V);
    forward_cached_chunk(out.data(), kv, c, P, tk.data(), st.data(), ps.data(), (int)tk.size(), rows.data(),
                         (int)rows.size());
    for (size_t r = 0; r < rows.size(); r++)
      std::memcpy(logits + (size_t)dest[r] * c.V, out.data() + r * c.V, sizeof(float) * c.V);
  }
}

// splitmix64: one independent stream of uniform numbers per sequence, so a stream's tokens do not depend on
// which other streams share its batch.
struct Rng {
  uint64_t s;
  double uniform() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
  }
};

// Picks a token from one row of logits(V). logp and ent are those of the untempered model distribution.
// ex is scratch for exp(x - max); at temperature 1 the sampling weights are those same numbers, so they are reused
// (bit for bit what recomputing them gives).
static int sample_row(const float* x, int V, const SampleOptions& opt, Rng& rng, float* logp, float* ent,
                      std::vector<int>& idx, std::vector<double>& pr, std::vector<double>& ex) {
  float mx = -INFINITY;
  int arg = 0;
  for (int v = 0; v < V; v++)
    if (x[v] > mx) mx = x[v], arg = v;
  double sum = 0, dot = 0;
  ex.resize(V);
  for (int v = 0; v < V; v++) {
    double e = ex[v] = std::exp((double)x[v] - mx);
    sum += e;
    dot += e * ((double)x[v] - mx);
  }
  const double lse = std::log(sum);
  *ent = (float)(lse - dot / sum);
  int tok = arg;
  if (opt.temperature > 0) {
    const double invT = 1.0 / opt.temperature;
    const bool filter = (opt.top_k > 0 && opt.top_k < V) || opt.top_p < 1.0f;
    idx.resize(V);
    std::iota(idx.begin(), idx.end(), 0);
    int keep = V;
    if (filter) {
      keep = opt.top_k > 0 && opt.top_k < V ? opt.top_k : V;
      std::partial_sort(idx.begin(), idx.begin() + keep, idx.end(),
                        [&](int a, int b) { return x[a] > x[b] || (x[a] == x[b] && a < b); });
    }
    pr.resize(keep);
    double tot = 0;
    if (invT == 1.0)
      for (int r = 0; r < keep; r++) tot += (pr[r] = ex[idx[r]]);
    else
      for (int r = 0; r < keep; r++) tot += (pr[r] = std::exp(((double)x[idx[r]] - mx) * invT));
    if (opt.top_p < 1.0f) {
      double cum = 0;
      int r = 0;
      for (; r < keep; r++) {
        cum += pr[r] / tot;
        if (cum >= opt.top_p) break;
      }
      keep = std::min(keep, r + 1);
      tot = 0;
      for (int q = 0; q < keep; q++) tot += pr[q];
    }
    double u = rng.uniform() * tot, acc = 0;
    tok = idx[keep - 1];
    for (int r = 0; r < keep; r++) {
      acc += pr[r];
      if (u < acc) {
        tok = idx[r];
        break;
      }
    }
  }
  *logp = (float)(((double)x[tok] - mx) - lse);
  return tok;
}

SampleResult generate(const Config& c, const float* P, const int32_t* prompts, const int32_t* prompt_lens, int B,
                      const SampleOptions& opt) {
  SampleResult R;
  const int M = opt.max_new;
  R.tokens.assign((size_t)B * M, -1);
  R.logp.assign((size_t)B * M, 0.0f);
  R.ent.assign((size_t)B * M, 0.0f);
  R.len.assign(B, 0);
  R.stopped.assign(B, 0);
  if (B == 0) return R;
  int maxp = 0, total = 0;
  for (int b = 0; b < B; b++) maxp = std::max(maxp, prompt_lens[b]), total += prompt_lens[b];
  KVCache kv;
  kvcache_init(kv, c, B, maxp + M);
  std::vector<int32_t> tok(total), str(total), pos(total), rows;
  for (int b = 0, t = 0; b < B; b++) {
    for (int i = 0; i < prompt_lens[b]; i++, t++) tok[t] = prompts[t], str[t] = b, pos[t] = i;
    rows.push_back(t - 1);
  }
  std::vector<float> logits((size_t)B * c.V);
  model_forward_cached(logits.data(), kv, c, P, tok.data(), str.data(), pos.data(), total, rows.data(), B);
  std::vector<int32_t> active(B);  // stream of each logits row
  std::iota(active.begin(), active.end(), 0);
  std::vector<Rng> rng(B);
  // stream b of a batch seeded with `seed` starts where a lone stream seeded with seeds[b] would (so a caller can
  // split one batch into requests, or merge requests into one batch, and draw the same tokens)
  for (int b = 0; b < B; b++)
    rng[b].s = opt.seeds.empty() ? opt.seed * 0xD1B54A32D192ED03ull + (uint64_t)b * 0x9E3779B97F4A7C15ull + 1
                                 : opt.seeds[b] * 0xD1B54A32D192ED03ull + 1;
  for (int step = 0; step < M && !active.empty(); step++) {
    const int n = (int)active.size();
#pragma omp parallel
    {
      std::vector<int> idx;
      std::vector<double> pr, ex;
#pragma omp for schedule(static)
      for (int r = 0; r < n; r++) {
        const int b = active[r];
        float lp, en;
        int t = sample_row(logits.data() + (size_t)r * c.V, c.V, opt, rng[b], &lp, &en, idx, pr, ex);
        R.tokens[(size_t)b * M + step] = t;
        R.logp[(size_t)b * M + step] = lp;
        R.ent[(size_t)b * M + step] = en;
        R.len[b] = step + 1;
        for (int s : opt.stop)
          if (s == t) R.stopped[b] = 1;
      }
    }
    std::vector<int32_t> next;
    for (int b : active)
      if (!R.stopped[b] && step + 1 < M) next.push_back(b);
    active.swap(next);
    const int m = (int)active.size();
    if (m == 0) break;
    tok.resize(m), str.resize(m), pos.resize(m), rows.resize(m);
    for (int r = 0; r < m; r++) {
      const int b = active[r];
      tok[r] = R.tokens[(size_t)b * M + step];
      str[r] = b;
      pos[r] = prompt_lens[b] + step;
      rows[r] = r;
    }
    model_forward_cached(logits.data(), kv, c, P, tok.data(), str.data(), pos.data(), m, rows.data(), m);
  }
  return R;
}

}  // namespace nrt
