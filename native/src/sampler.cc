// Inference with a KV cache: a cached forward pass for any mix of (token, stream, position), and batched
// sampling with temperature, top-k and top-p, seeded per stream.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>

#include "kernels/kernels.h"
#include "kernels/vecmath.h"
#include "layer.h"
#include "model.h"

namespace nrt {

void kvcache_init(KVCache& kv, const Config& c, int B, int T) {
  kv.B = B;
  kv.T = T;
  // a ring only when every layer has the window (Qwen2 may keep full attention on its first layers)
  kv.S = c.window > 0 && c.window_from == 0 && 2 * c.window < T ? 2 * c.window : T;
  kv.k.assign((size_t)c.L * B * kv.S * c.KV(), 0.0f);
  kv.v.assign((size_t)c.L * B * kv.S * c.KV(), 0.0f);
}

static void grow(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// tokens(n) at (stream(n), pos(n)) through every layer (layer.h), each token's key and value written into its
// stream's cache slot before the layer attends over the cache; logits (n_out, V) for the rows out_rows(n_out).
static void forward_cached_chunk(float* logits, KVCache& kv, const Config& c, Params P, const int32_t* tokens,
                                 const int32_t* stream, const int32_t* pos, int n, const int32_t* out_rows,
                                 int n_out) {
  const int C = c.C, F = c.F, Q = c.Q(), KV = c.KV(), QKV = c.QKV(), HS = c.HS;
  for (int i = 0; i < n; i++)
    if (pos[i] >= kv.T || stream[i] >= kv.B) throw std::runtime_error("position beyond the KV cache");
  const Weights<const float> w = weights(c, P);
  grow(kv.x, (size_t)n * C);
  grow(kv.h, (size_t)n * C);
  grow(kv.rstd, n);
  grow(kv.qkv, (size_t)n * QKV);
  if (c.qk_norm) grow(kv.qk_in, (size_t)n * (Q + KV)), grow(kv.qk_rstd, (size_t)n * (c.NH + c.NKV));
  grow(kv.y, (size_t)n * Q);
  grow(kv.gu, (size_t)n * 2 * F);
  grow(kv.a, (size_t)n * F);
  grow(kv.lora_u, (size_t)n * c.lora.count() * c.lora.rank);
  grow(kv.rope_cos, (size_t)n * (HS / 2));
  grow(kv.rope_sin, (size_t)n * (HS / 2));
  float *x = kv.x.data(), *h = kv.h.data(), *rstd = kv.rstd.data();
  // one residual stream updated in place; the two norms share one buffer
  const LayerActs t{x,    h,    rstd,         kv.qkv.data(), kv.qk_in.data(), kv.qk_rstd.data(), kv.y.data(),
                    x,    h,    rstd,         kv.gu.data(),  kv.a.data(),     x,
                    kv.lora_u.data()};
  rope_table(kv.rope_cos.data(), kv.rope_sin.data(), pos, n, c);
  embedding_forward(x, tokens, w.embed, n, C);
  for (int l = 0; l < c.L; l++) {
    float* K = kv.k.data() + (size_t)l * kv.B * kv.S * KV;
    float* Vc = kv.v.data() + (size_t)l * kv.B * kv.S * KV;
    layer_forward(t, w.layers[l], c, kv.rope_cos.data(), kv.rope_sin.data(), n, [&](float* y, const float* qkv) {
      for (int i = 0; i < n; i++) {
        const size_t at = ((size_t)stream[i] * kv.S + pos[i] % kv.S) * KV;
        std::memcpy(K + at, qkv + (size_t)i * QKV + Q, sizeof(float) * KV);
        std::memcpy(Vc + at, qkv + (size_t)i * QKV + Q + KV, sizeof(float) * KV);
      }
      attention_forward_cached(y, qkv, K, Vc, stream, pos, n, kv.S, kv.T, c.NH, c.NKV, HS, c.window_at(l));
    });
  }
  // the final norm and lm_head only for the rows asked for
  grow(kv.xo, (size_t)n_out * C);
  grow(kv.ho, (size_t)n_out * C);
  grow(kv.ro, n_out);
  for (int r = 0; r < n_out; r++)
    std::memcpy(kv.xo.data() + (size_t)r * C, x + (size_t)out_rows[r] * C, sizeof(float) * C);
  head_forward(logits, kv.ho.data(), kv.ro.data(), kv.xo.data(), w, c, n_out);
}

// With a ring of S slots, the tokens of one pass may span at most S - W + 1 positions (a key is overwritten
// only once no query of the pass can still see it), so a longer pass (a long prompt) is run in position chunks.
void model_forward_cached(float* logits, KVCache& kv, const Config& c, Params P, const int32_t* tokens,
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

// The sampling weights of one row, exp((x[v] - mx) * invT) in float (vecmath's exp; the same value in a vector
// lane or a tail), written to ex; bs[j] the sum of block j of SAMPLE_BLOCK weights (in double) and the return value
// their sum in block order; *dot (with dot non-null) sum_v ex[v] * (x[v] - mx), for the entropy at invT = 1.
constexpr int SAMPLE_BLOCK = 64;
static double exp_blocks(float* ex, double* bs, double* dot, const float* x, int V, float mx, float invT) {
  double tot = 0, dt = 0;
  for (int j0 = 0, j = 0; j0 < V; j0 += SAMPLE_BLOCK, j++) {
    const int j1 = std::min(V, j0 + SAMPLE_BLOCK);
    int v = j0;
    double b = 0, d = 0;
#ifdef NRT_AVX2
    __m256d b0 = _mm256_setzero_pd(), b1 = b0, d0 = b0, d1 = b0;
    const __m256 m = _mm256_set1_ps(mx), it = _mm256_set1_ps(invT);
    for (; v + 8 <= j1; v += 8) {
      const __m256 z = _mm256_sub_ps(_mm256_loadu_ps(x + v), m);
      const __m256 e = exp8(invT == 1.0f ? z : _mm256_mul_ps(z, it));
      _mm256_storeu_ps(ex + v, e);
      const __m256d elo = _mm256_cvtps_pd(_mm256_castps256_ps128(e)), ehi = _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1));
      b0 = _mm256_add_pd(b0, elo), b1 = _mm256_add_pd(b1, ehi);
      if (dot) {
        d0 = _mm256_fmadd_pd(elo, _mm256_cvtps_pd(_mm256_castps256_ps128(z)), d0);
        d1 = _mm256_fmadd_pd(ehi, _mm256_cvtps_pd(_mm256_extractf128_ps(z, 1)), d1);
      }
    }
    alignas(32) double l[4];
    _mm256_store_pd(l, _mm256_add_pd(b0, b1));
    b = (l[0] + l[1]) + (l[2] + l[3]);
    _mm256_store_pd(l, _mm256_add_pd(d0, d1));
    d = (l[0] + l[1]) + (l[2] + l[3]);
#endif
    for (; v < j1; v++) {
      const float z = x[v] - mx;
      const float e = ex[v] = exp_approx(invT == 1.0f ? z : z * invT);
      b += e;
      d += (double)e * z;
    }
    bs[j] = b;
    tot += b;
    dt += d;
  }
  if (dot) *dot = dt;
  return tot;
}

// Picks a token from one row of logits(V). logp and ent are those of the untempered model distribution.
// ex is scratch for the weights exp(x - mx) and bs for their block sums; at temperature 1 the sampling weights are
// those same numbers. Without top-k / top-p the draw is one scan: the block sums up to the block that holds u, then
// that block's weights; with them, the candidates are sorted (top-k: partially) and scanned.
static int sample_row(const float* x, int V, const SampleOptions& opt, Rng& rng, float* logp, float* ent,
                      std::vector<int>& idx, std::vector<double>& pr, std::vector<float>& ex, std::vector<double>& bs) {
  const float mx = max_of(x, V);
  int arg = 0;
  while (arg < V - 1 && !(x[arg] == mx)) arg++;  // the first maximum (0 if the row is NaN)
  ex.resize(V);
  bs.resize((V + SAMPLE_BLOCK - 1) / SAMPLE_BLOCK);
  double dot = 0;
  const double sum = exp_blocks(ex.data(), bs.data(), &dot, x, V, mx, 1.0f);
  const double lse = std::log(sum);
  *ent = (float)(lse - dot / sum);
  int tok = arg;
  if (opt.temperature > 0) {
    const float invT = 1.0f / opt.temperature;
    const bool filter = (opt.top_k > 0 && opt.top_k < V) || opt.top_p < 1.0f;
    if (!filter) {
      // the weights at this temperature (those of temperature 1 are already there), then one scan
      const double tot = invT == 1.0f ? sum : exp_blocks(ex.data(), bs.data(), nullptr, x, V, mx, invT);
      const double u = rng.uniform() * tot;
      double acc = 0;
      tok = V - 1;
      for (int j = 0, j0 = 0; j0 < V; j++, j0 += SAMPLE_BLOCK) {
        if (acc + bs[j] <= u) {
          acc += bs[j];
          continue;
        }
        double a = acc;
        const int j1 = std::min(V, j0 + SAMPLE_BLOCK);
        int v = j0;
        for (; v < j1; v++)
          if (u < (a += ex[v])) break;
        if (v < j1) {
          tok = v;
          break;
        }
        acc += bs[j];  // rounding left u past this block's weights: on to the next
      }
    } else {
      idx.resize(V);
      std::iota(idx.begin(), idx.end(), 0);
      const int keep0 = opt.top_k > 0 && opt.top_k < V ? opt.top_k : V;
      std::partial_sort(idx.begin(), idx.begin() + keep0, idx.end(),
                        [&](int a, int b) { return x[a] > x[b] || (x[a] == x[b] && a < b); });
      int keep = keep0;
      pr.resize(keep);
      double tot = 0;
      for (int r = 0; r < keep; r++)
        tot += (pr[r] = invT == 1.0f ? ex[idx[r]] : exp_approx((x[idx[r]] - mx) * invT));
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
  }
  *logp = (float)(((double)x[tok] - mx) - lse);
  return tok;
}

SampleResult generate(const Config& c, Params P, const int32_t* prompts, const int32_t* prompt_lens, int B,
                      const SampleOptions& opt) {
  SampleResult R;
  const int M = opt.max_new;
  // the candidates: every id, or those below vocab_limit (padding rows past the tokenizer are never sampled, and
  // log-probabilities and entropies are those of the distribution over the real ids)
  const int Vs = opt.vocab_limit > 0 && opt.vocab_limit < c.V ? opt.vocab_limit : c.V;
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
  // each thread's sampling scratch, kept for the whole call (a row's weights are too big for malloc to recycle)
  struct Scratch {
    std::vector<int> idx;
    std::vector<double> pr, bs;
    std::vector<float> ex;
  };
  std::vector<Scratch> scratch(omp_get_max_threads());
  for (int step = 0; step < M && !active.empty(); step++) {
    const int n = (int)active.size();
#pragma omp parallel
    {
      Scratch& sc = scratch[std::min(omp_get_thread_num(), (int)scratch.size() - 1)];
#pragma omp for schedule(static)
      for (int r = 0; r < n; r++) {
        const int b = active[r];
        float lp, en;
        int t = sample_row(logits.data() + (size_t)r * c.V, Vs, opt, rng[b], &lp, &en, sc.idx, sc.pr, sc.ex, sc.bs);
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
