// Causal grouped-query attention over packed sequences, with an optional sliding window.
//   qkv(N,QKV) rows [q(NH*HS) | k(NKV*HS) | v(NKV*HS)], already rotated; out(N,NH*HS)
//   query head h reads key/value head h / (NH/NKV); query i of a sequence attends to keys j with
//   0 <= i - j < window (window <= 0: all j <= i); scale = 1/sqrt(HS)
//   att: per sequence s, probabilities (NH, T_s, T_s) at att_off[s]; entries outside the mask are 0
// Backward ACCUMULATES into dqkv(N,QKV).
//
// Two implementations. The *_naive ones loop over (i, j, e) directly: the oracle. The fast ones (*_blocks) are
// OpenBLAS products over blocks of queries and the band of keys they see (below).
#include <cblas.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "kernels.h"
#include "vecmath.h"

namespace nrt {

static inline int window_lo(int i, int window) { return window > 0 && i - window + 1 > 0 ? i - window + 1 : 0; }

void attention_forward_naive(float* out, float* att, const float* qkv, const int32_t* seq_start,
                             const int64_t* att_off, int S, int NH, int NKV, int HS, int window) {
  const int Q = NH * HS, KV = NKV * HS, QKV = Q + 2 * KV, group = NH / NKV;
  const float scale = 1.0f / std::sqrt((float)HS);
#pragma omp parallel for schedule(dynamic, 1) collapse(2)
  for (int s = 0; s < S; s++)
    for (int h = 0; h < NH; h++) {
      const int o = seq_start[s], T = seq_start[s + 1] - o, kv = h / group;
      for (int i = 0; i < T; i++) {
        const float* q = qkv + (long)(o + i) * QKV + h * HS;
        float* p = att + att_off[s] + ((long)h * T + i) * T;
        const int lo = window_lo(i, window);
        float mx = -INFINITY;
        for (int j = 0; j < T; j++) p[j] = 0.0f;
        for (int j = lo; j <= i; j++) {
          const float* k = qkv + (long)(o + j) * QKV + Q + kv * HS;
          float d = 0.0f;
          for (int e = 0; e < HS; e++) d += q[e] * k[e];
          p[j] = d * scale;
          if (p[j] > mx) mx = p[j];
        }
        float sum = 0.0f;
        for (int j = lo; j <= i; j++) {
          p[j] = std::exp(p[j] - mx);
          sum += p[j];
        }
        const float inv = 1.0f / sum;
        float* y = out + (long)(o + i) * Q + h * HS;
        for (int e = 0; e < HS; e++) y[e] = 0.0f;
        for (int j = lo; j <= i; j++) {
          p[j] *= inv;
          const float* v = qkv + (long)(o + j) * QKV + Q + KV + kv * HS;
          for (int e = 0; e < HS; e++) y[e] += p[j] * v[e];
        }
      }
    }
}

// in the forward pass this was: s_ij = scale q_i.k_j ; p_ij = softmax_j(s_ij) ; y_i = sum_j p_ij v_j
// so now we have: dp_ij = dy_i.v_j ; dv_j += p_ij dy_i ; ds_ij = p_ij (dp_ij - sum_j' p_ij' dp_ij')
//                 dq_i += scale sum_j ds_ij k_j ; dk_j += scale ds_ij q_i
// Work is split by (sequence, key/value head), so the query heads that share k and v never race.
void attention_backward_naive(float* dqkv, const float* dout, const float* att, const float* qkv,
                              const int32_t* seq_start, const int64_t* att_off, int S, int NH, int NKV, int HS,
                              int window) {
  const int Q = NH * HS, KV = NKV * HS, QKV = Q + 2 * KV, group = NH / NKV;
  const float scale = 1.0f / std::sqrt((float)HS);
#pragma omp parallel for schedule(dynamic, 1) collapse(2)
  for (int s = 0; s < S; s++)
    for (int kv = 0; kv < NKV; kv++) {
      const int o = seq_start[s], T = seq_start[s + 1] - o;
      std::vector<float> dp(T);
      for (int h = kv * group; h < (kv + 1) * group; h++)
        for (int i = 0; i < T; i++) {
          const float* p = att + att_off[s] + ((long)h * T + i) * T;
          const float* dy = dout + (long)(o + i) * Q + h * HS;
          const float* q = qkv + (long)(o + i) * QKV + h * HS;
          float* dq = dqkv + (long)(o + i) * QKV + h * HS;
          const int lo = window_lo(i, window);
          float dot = 0.0f;
          for (int j = lo; j <= i; j++) {
            const float* v = qkv + (long)(o + j) * QKV + Q + KV + kv * HS;
            float* dv = dqkv + (long)(o + j) * QKV + Q + KV + kv * HS;
            float d = 0.0f;
            for (int e = 0; e < HS; e++) {
              d += dy[e] * v[e];
              dv[e] += p[j] * dy[e];
            }
            dp[j] = d;
            dot += p[j] * d;
          }
          for (int j = lo; j <= i; j++) {
            const float ds = p[j] * (dp[j] - dot) * scale;
            const float* k = qkv + (long)(o + j) * QKV + Q + kv * HS;
            float* dk = dqkv + (long)(o + j) * QKV + Q + kv * HS;
            for (int e = 0; e < HS; e++) {
              dq[e] += ds * k[e];
              dk[e] += ds * q[e];
            }
          }
        }
    }
}

// ---- the training attention as products of blocks (OpenBLAS, one thread per call: they run inside the parallel
// loops below, where OpenBLAS does not start threads of its own)
// Queries in blocks of BQ rows [i0, i1) against the keys they can see, [window_lo(i0), i1): the scores, the
// weighted sums and their gradients are GEMMs over that band, and the few entries of it outside the mask (above the
// diagonal, or before a row's window) are zero in P and dS, so they add nothing. Waste: about BQ/2 keys per query.
constexpr int ATT_BQ = 64;

// Per (sequence, query head, query block), any order: S = scale Q K^T into P's rows, softmax over each row's mask,
// zeros elsewhere, then y = P V.
static void attention_forward_blocks(float* out, float* att, const float* qkv, const int32_t* seq_start,
                                     const int64_t* att_off, int S, int NH, int NKV, int HS, int window) {
  const int Q = NH * HS, KV = NKV * HS, QKV = Q + 2 * KV, group = NH / NKV;
  const float scale = 1.0f / std::sqrt((float)HS);
  std::vector<std::array<int, 3>> tasks;  // (s, h, i0)
  for (int s = 0; s < S; s++)
    for (int h = 0; h < NH; h++)
      for (int i0 = 0; i0 < seq_start[s + 1] - seq_start[s]; i0 += ATT_BQ) tasks.push_back({s, h, i0});
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t t = 0; t < tasks.size(); t++) {
    const int s = tasks[t][0], h = tasks[t][1], i0 = tasks[t][2], o = seq_start[s], T = seq_start[s + 1] - o;
    const int i1 = std::min(T, i0 + ATT_BQ), m = i1 - i0, j0 = window_lo(i0, window), w = i1 - j0, kv = h / group;
    const float* kb = qkv + (long)o * QKV + Q + kv * HS;
    float* P = att + att_off[s] + ((long)h * T + i0) * T;  // row i0 of head h
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, w, HS, scale, qkv + (long)(o + i0) * QKV + h * HS, QKV,
                kb + (long)j0 * QKV, QKV, 0.0f, P + j0, T);
    for (int i = i0; i < i1; i++) {
      float* p = P + (long)(i - i0) * T;
      const int lo = window_lo(i, window), n = i + 1 - lo;
      const float mx = max_of(p + lo, n);
      const float inv = 1.0f / exp_shift_sum(p + lo, p + lo, mx, n);
      for (int j = lo; j <= i; j++) p[j] *= inv;
      std::fill(p, p + lo, 0.0f);
      std::fill(p + i + 1, p + T, 0.0f);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, HS, w, 1.0f, P + j0, T, kb + KV + (long)j0 * QKV, QKV,
                0.0f, out + (long)(o + i0) * Q + h * HS, Q);
  }
}

// Per (sequence, kv head), since the query heads of its group and all query blocks add into the same dk, dv; for
// each head h and block, with dS = scale P o (dP - rowsum(P o dP)):
//   dP = dy V^T ; dq = dS K ; dk += dS^T q ; dv += P^T dy      (over the block's band of keys)
// acc = false: dqkv is written (=), not accumulated.
static void attention_backward_blocks(float* dqkv, const float* dout, const float* att, const float* qkv,
                                      const int32_t* seq_start, const int64_t* att_off, int S, int NH, int NKV,
                                      int HS, int window, bool acc) {
  const int Q = NH * HS, KV = NKV * HS, QKV = Q + 2 * KV, group = NH / NKV;
  const float scale = 1.0f / std::sqrt((float)HS);
#pragma omp parallel
  {
    std::vector<float> dS;
#pragma omp for schedule(dynamic, 1) collapse(2)
    for (int s = 0; s < S; s++)
      for (int kv = 0; kv < NKV; kv++) {
        const int o = seq_start[s], T = seq_start[s + 1] - o;
        const float* kb = qkv + (long)o * QKV + Q + kv * HS;
        float* dkb = dqkv + (long)o * QKV + Q + kv * HS;
        if (!acc)
          for (int j = 0; j < T; j++) {
            std::fill(dkb + (long)j * QKV, dkb + (long)j * QKV + HS, 0.0f);
            std::fill(dkb + (long)j * QKV + KV, dkb + (long)j * QKV + KV + HS, 0.0f);
          }
        dS.resize((size_t)ATT_BQ * T);
        for (int h = kv * group; h < (kv + 1) * group; h++) {
          const float* dyb = dout + (long)o * Q + h * HS;
          const float* qb = qkv + (long)o * QKV + h * HS;
          for (int i0 = 0; i0 < T; i0 += ATT_BQ) {
            const int i1 = std::min(T, i0 + ATT_BQ), m = i1 - i0, j0 = window_lo(i0, window), w = i1 - j0;
            const float* P = att + att_off[s] + ((long)h * T + i0) * T + j0;  // (m, w) at stride T
            float* ds = dS.data();                                             // (m, w) at stride w
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, w, HS, 1.0f, dyb + (long)i0 * Q, Q,
                        kb + KV + (long)j0 * QKV, QKV, 0.0f, ds, w);
            for (int r = 0; r < m; r++) {
              const int i = i0 + r, lo = window_lo(i, window) - j0, hi = i - j0;
              const float* p = P + (long)r * T;
              float* d = ds + (long)r * w;
              float dot = 0.0f;
              for (int j = lo; j <= hi; j++) dot += p[j] * d[j];
              for (int j = lo; j <= hi; j++) d[j] = p[j] * (d[j] - dot) * scale;
              std::fill(d, d + lo, 0.0f);
              std::fill(d + hi + 1, d + w, 0.0f);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, HS, w, 1.0f, ds, w, kb + (long)j0 * QKV, QKV,
                        acc ? 1.0f : 0.0f, dqkv + (long)(o + i0) * QKV + h * HS, QKV);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, w, HS, m, 1.0f, ds, w, qb + (long)i0 * QKV, QKV,
                        1.0f, dkb + (long)j0 * QKV, QKV);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, w, HS, m, 1.0f, P, T, dyb + (long)i0 * Q, Q, 1.0f,
                        dkb + KV + (long)j0 * QKV, QKV);
          }
        }
      }
  }
}

// ---- attention over a KV cache (sampling)
// Per (token i, query head h) over its stream's cached positions j in [lo(pos_i), pos_i]; position j sits in slot
// j % S (S = T, or a ring of S < T slots with a sliding window). With AVX2, HS % 8 == 0 and no ring: 8-wide dot
// products against 8 key rows at once, vecmath's exp and a register-accumulated weighted sum of value rows; otherwise
// the plain loops.
void attention_forward_cached(float* out, const float* qkv, const float* K, const float* V, const int32_t* stream,
                              const int32_t* pos, int n, int S, int T, int NH, int NKV, int HS, int window) {
  const int Q = NH * HS, KV = NKV * HS, QKV = Q + 2 * KV, group = NH / NKV;
  const float scale = 1.0f / std::sqrt((float)HS);
#pragma omp parallel
  {
    std::vector<float> p(T);
#pragma omp for schedule(static) collapse(2)
    for (int i = 0; i < n; i++)
      for (int h = 0; h < NH; h++) {
        const int kv = h / group, pi = pos[i], lo = window_lo(pi, window), m = pi + 1 - lo;
        const float* q = qkv + (long)i * QKV + h * HS;
        const float* Ks = K + (long)stream[i] * S * KV + kv * HS;
        const float* Vs = V + (long)stream[i] * S * KV + kv * HS;
        float* y = out + (long)i * Q + h * HS;
#ifdef NRT_AVX2
        if (S == T && HS % 8 == 0) {
          int j = lo;
          for (; j + 8 <= pi + 1; j += 8)
            _mm256_storeu_ps(p.data() + j,
                             _mm256_mul_ps(dot8_rows8(q, Ks + (long)j * KV, KV, HS), _mm256_set1_ps(scale)));
          for (; j <= pi; j++) p[j] = dot8(q, Ks + (long)j * KV, HS) * scale;
          const float mx = max_of(p.data() + lo, m);
          const float inv = 1.0f / exp_shift_sum(p.data() + lo, p.data() + lo, mx, m);
          for (int j = lo; j <= pi; j++) p[j] *= inv;
          wsum_rows(y, p.data(), 1, Vs, KV, lo, pi, HS, false);
          continue;
        }
#endif
        float mx = -INFINITY;
        for (int j = lo; j <= pi; j++) {
          const float* k = Ks + (long)(j % S) * KV;
          float d = 0.0f;
          for (int e = 0; e < HS; e++) d += q[e] * k[e];
          p[j] = d * scale;
          mx = std::max(mx, p[j]);
        }
        float sum = 0.0f;
        for (int j = lo; j <= pi; j++) sum += (p[j] = std::exp(p[j] - mx));
        for (int e = 0; e < HS; e++) y[e] = 0.0f;
        for (int j = lo; j <= pi; j++) {
          const float wj = p[j] / sum;
          const float* v = Vs + (long)(j % S) * KV;
          for (int e = 0; e < HS; e++) y[e] += wj * v[e];
        }
      }
  }
}

void attention_forward(float* out, float* att, const float* qkv, const int32_t* seq_start, const int64_t* att_off,
                       int S, int NH, int NKV, int HS, int window) {
  attention_forward_blocks(out, att, qkv, seq_start, att_off, S, NH, NKV, HS, window);
}

void attention_backward(float* dqkv, const float* dout, const float* att, const float* qkv, const int32_t* seq_start,
                        const int64_t* att_off, int S, int NH, int NKV, int HS, int window) {
  attention_backward_blocks(dqkv, dout, att, qkv, seq_start, att_off, S, NH, NKV, HS, window, true);
}

void attention_backward_set(float* dqkv, const float* dout, const float* att, const float* qkv,
                            const int32_t* seq_start, const int64_t* att_off, int S, int NH, int NKV, int HS,
                            int window) {
  attention_backward_blocks(dqkv, dout, att, qkv, seq_start, att_off, S, NH, NKV, HS, window, false);
}

}  // namespace nrt
