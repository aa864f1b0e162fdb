// Causal grouped-query attention over packed sequences, with an optional sliding window.
//   qkv(N,QKV) rows [q(NH*HS) | k(NKV*HS) | v(NKV*HS)], already rotated; out(N,NH*HS)
//   query head h reads key/value head h / (NH/NKV); query i of a sequence attends to keys j with
//   0 <= i - j < window (window <= 0: all j <= i); scale = 1/sqrt(HS)
//   att: per sequence s, probabilities (NH, T_s, T_s) at att_off[s]; entries outside the mask are 0
// Backward ACCUMULATES into dqkv(N,QKV).
//
// Two implementations. The *_naive ones loop over (i, j, e) directly: the oracle, and the path for head sizes that
// are not a multiple of 8. The fast ones (AVX2, HS % 8 == 0) copy one sequence's keys (or values) of one head
// transposed, (HS, Tp) with Tp = T rounded up to 8 and zero padding, so that a query's scores against all keys
// are 8-wide FMAs over j with no horizontal sums; the weighted sums over j (y, dq, dk, dv) are 8-wide over e.
// Scores are computed over [lo, i] rounded out to multiples of 8; the padding is never read back.
#include <algorithm>
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

#ifdef NRT_AVX2

// The (HS, Tp) transpose of rows x[j * ld + e], j < T, zero beyond T.
static void transpose_pad(float* t, const float* x, long ld, int T, int Tp, int HS) {
  for (int e = 0; e < HS; e++) {
    float* r = t + (long)e * Tp;
    for (int j = 0; j < T; j++) r[j] = x[j * ld + e];
    for (int j = T; j < Tp; j++) r[j] = 0.0f;
  }
}

// out[j] = sum_e a[e] * bt[e * Tp + j] for j in [j0, j1), both multiples of 8; NB vectors of j at a time.
template <int NB>
static inline void dot_cols_block(float* out, const float* a, const float* bt, int Tp, int j, int HS) {
  __m256 acc[NB];
  for (int b = 0; b < NB; b++) acc[b] = _mm256_setzero_ps();
  for (int e = 0; e < HS; e++) {
    const __m256 ae = _mm256_broadcast_ss(a + e);
    const float* r = bt + (long)e * Tp + j;
    for (int b = 0; b < NB; b++) acc[b] = _mm256_fmadd_ps(ae, _mm256_loadu_ps(r + 8 * b), acc[b]);
  }
  for (int b = 0; b < NB; b++) _mm256_storeu_ps(out + j + 8 * b, acc[b]);
}
static void dot_cols(float* out, const float* a, const float* bt, int Tp, int j0, int j1, int HS) {
  int j = j0;
  for (; j + 32 <= j1; j += 32) dot_cols_block<4>(out, a, bt, Tp, j, HS);
  switch ((j1 - j) / 8) {
    case 3: dot_cols_block<3>(out, a, bt, Tp, j, HS); break;
    case 2: dot_cols_block<2>(out, a, bt, Tp, j, HS); break;
    case 1: dot_cols_block<1>(out, a, bt, Tp, j, HS); break;
  }
}

static void attention_forward_avx2(float* out, float* att, const float* qkv, const int32_t* seq_start,
                                   const int64_t* att_off, int S, int NH, int NKV, int HS, int window) {
  const int Q = NH * HS, KV = NKV * HS, QKV = Q + 2 * KV, group = NH / NKV;
  const float scale = 1.0f / std::sqrt((float)HS);
#pragma omp parallel
  {
    std::vector<float> kt, sc;
#pragma omp for schedule(dynamic, 1) collapse(2)
    for (int s = 0; s < S; s++)
      for (int h = 0; h < NH; h++) {
        const int o = seq_start[s], T = seq_start[s + 1] - o, Tp = (T + 7) & ~7, kv = h / group;
        kt.resize((size_t)HS * Tp);
        sc.resize(Tp);
        transpose_pad(kt.data(), qkv + (long)o * QKV + Q + kv * HS, QKV, T, Tp, HS);
        const float* vbase = qkv + (long)o * QKV + Q + KV + kv * HS;
        for (int i = 0; i < T; i++) {
          const float* q = qkv + (long)(o + i) * QKV + h * HS;
          float* p = att + att_off[s] + ((long)h * T + i) * T;
          const int lo = window_lo(i, window), n = i + 1 - lo;
          dot_cols(sc.data(), q, kt.data(), Tp, lo & ~7, (i + 8) & ~7, HS);
          for (int j = lo; j <= i; j++) sc[j] *= scale;
          const float mx = max_of(sc.data() + lo, n);
          const float inv = 1.0f / exp_shift_sum(sc.data() + lo, sc.data() + lo, mx, n);
          for (int j = 0; j < lo; j++) p[j] = 0.0f;
          for (int j = lo; j <= i; j++) p[j] = sc[j] * inv;
          for (int j = i + 1; j < T; j++) p[j] = 0.0f;
          wsum_rows(out + (long)(o + i) * Q + h * HS, p, 1, vbase, QKV, lo, i, HS, false);
        }
      }
  }
}

// Per (sequence, kv head) and each query head h of its group, with dS (T, T) = scale P o (dP - rowsum(P o dP)):
//   row by row i:    dp_i = dy_i V^T (8-wide over j against V transposed); dS_i; dq_i = dS_i K
//   column by column j: dv_j += sum_i P_ij dy_i ; dk_j += sum_i dS_ij q_i   (i from j to j + W - 1)
// so every output row is summed in registers and stored once. acc = false: dqkv is written (=), not accumulated.
static void attention_backward_avx2(float* dqkv, const float* dout, const float* att, const float* qkv,
                                    const int32_t* seq_start, const int64_t* att_off, int S, int NH, int NKV,
                                    int HS, int window, bool acc) {
  const int Q = NH * HS, KV = NKV * HS, QKV = Q + 2 * KV, group = NH / NKV;
  const float scale = 1.0f / std::sqrt((float)HS);
#pragma omp parallel
  {
    std::vector<float> vt, dp, dS;
#pragma omp for schedule(dynamic, 1) collapse(2)
    for (int s = 0; s < S; s++)
      for (int kv = 0; kv < NKV; kv++) {
        const int o = seq_start[s], T = seq_start[s + 1] - o, Tp = (T + 7) & ~7;
        vt.resize((size_t)HS * Tp);
        dp.resize(Tp);
        dS.resize((size_t)T * T);
        const float* kbase = qkv + (long)o * QKV + Q + kv * HS;
        float* dkbase = dqkv + (long)o * QKV + Q + kv * HS;
        transpose_pad(vt.data(), kbase + KV, QKV, T, Tp, HS);
        for (int h = kv * group; h < (kv + 1) * group; h++) {
          const float* P = att + att_off[s] + (long)h * T * T;
          const float* dybase = dout + (long)o * Q + h * HS;
          for (int i = 0; i < T; i++) {
            const float* p = P + (long)i * T;
            float* ds = dS.data() + (long)i * T;
            const int lo = window_lo(i, window);
            dot_cols(dp.data(), dybase + (long)i * Q, vt.data(), Tp, lo & ~7, (i + 8) & ~7, HS);
            float dot = 0.0f;
            for (int j = lo; j <= i; j++) dot += p[j] * dp[j];
            for (int j = lo; j <= i; j++) ds[j] = p[j] * (dp[j] - dot) * scale;
            wsum_rows(dqkv + (long)(o + i) * QKV + h * HS, ds, 1, kbase, QKV, lo, i, HS, acc);
          }
          // the first head of the group starts dk, dv (or adds to them when acc); the others add
          const bool add = acc || h > kv * group;
          for (int j = 0; j < T; j++) {
            const int hi = window > 0 && j + window - 1 < T - 1 ? j + window - 1 : T - 1;
            wsum_rows(dkbase + (long)j * QKV + KV, P + j, T, dybase, Q, j, hi, HS, add);
            wsum_rows(dkbase + (long)j * QKV, dS.data() + j, T, qkv + (long)o * QKV + h * HS, QKV, j, hi, HS, add);
          }
        }
      }
  }
}
#endif

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
#ifdef NRT_AVX2
  if (HS % 8 == 0) return attention_forward_avx2(out, att, qkv, seq_start, att_off, S, NH, NKV, HS, window);
#endif
  attention_forward_naive(out, att, qkv, seq_start, att_off, S, NH, NKV, HS, window);
}

void attention_backward(float* dqkv, const float* dout, const float* att, const float* qkv, const int32_t* seq_start,
                        const int64_t* att_off, int S, int NH, int NKV, int HS, int window) {
#ifdef NRT_AVX2
  if (HS % 8 == 0)
    return attention_backward_avx2(dqkv, dout, att, qkv, seq_start, att_off, S, NH, NKV, HS, window, true);
#endif
  attention_backward_naive(dqkv, dout, att, qkv, seq_start, att_off, S, NH, NKV, HS, window);
}

void attention_backward_set(float* dqkv, const float* dout, const float* att, const float* qkv,
                            const int32_t* seq_start, const int64_t* att_off, int S, int NH, int NKV, int HS,
                            int window) {
#ifdef NRT_AVX2
  if (HS % 8 == 0)
    return attention_backward_avx2(dqkv, dout, att, qkv, seq_start, att_off, S, NH, NKV, HS, window, false);
#endif
  const int N = seq_start[S];
  std::fill(dqkv, dqkv + (long)N * (NH + 2 * NKV) * HS, 0.0f);
  attention_backward_naive(dqkv, dout, att, qkv, seq_start, att_off, S, NH, NKV, HS, window);
}

}  // namespace nrt
