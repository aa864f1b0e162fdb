// Causal grouped-query attention over packed sequences, with an optional sliding window.
//   qkv(N,QKV) rows [q(NH*HS) | k(NKV*HS) | v(NKV*HS)], already rotated; out(N,NH*HS)
//   query head h reads key/value head h / (NH/NKV); query i of a sequence attends to keys j with
//   0 <= i - j < window (window <= 0: all j <= i); scale = 1/sqrt(HS)
//   att: per sequence s, probabilities (NH, T_s, T_s) at att_off[s]; entries outside the mask are 0
// Backward ACCUMULATES into dqkv(N,QKV).
#include <cmath>
#include <vector>

#include "kernels.h"

namespace nrt {

static inline int window_lo(int i, int window) { return window > 0 && i - window + 1 > 0 ? i - window + 1 : 0; }

void attention_forward(float* out, float* att, const float* qkv, const int32_t* seq_start, const int64_t* att_off,
                       int S, int NH, int NKV, int HS, int window) {
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
void attention_backward(float* dqkv, const float* dout, const float* att, const float* qkv, const int32_t* seq_start,
                        const int64_t* att_off, int S, int NH, int NKV, int HS, int window) {
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

}  // namespace nrt
