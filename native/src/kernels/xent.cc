// Softmax cross-entropy over the vocabulary, per row of logits(N,V):
//   lse = log sum_v exp(logit_v) ; logp = logit_target - lse ; ent = lse - sum_v p_v logit_v
// Rows whose target is -1 get logp = 0 (their entropy is still computed).
// exp is vecmath.h's vectorised one; per row, the sums run over 8 float lanes and the lanes are added in double.
#include <cmath>

#include "kernels.h"
#include "vecmath.h"

namespace nrt {

void xent_forward(float* lse, float* logp, float* ent, const float* logits, const int32_t* target, int N, int V) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const float* __restrict x = logits + (long)n * V;
    const float mx = max_of(x, V);
    double sum = 0.0, dot = 0.0;
    int v = 0;
#ifdef NRT_AVX2
    __m256 s8 = _mm256_setzero_ps(), d8 = _mm256_setzero_ps(), m8 = _mm256_set1_ps(mx);
    for (; v + 8 <= V; v += 8) {
      __m256 z = _mm256_sub_ps(_mm256_loadu_ps(x + v), m8), e = exp8(z);
      s8 = _mm256_add_ps(s8, e);
      d8 = _mm256_fmadd_ps(e, z, d8);
    }
    alignas(32) float s[8], d[8];
    _mm256_store_ps(s, s8);
    _mm256_store_ps(d, d8);
    for (int k = 0; k < 8; k++) sum += s[k], dot += d[k];
#endif
    for (; v < V; v++) {
      const float z = x[v] - mx, e = exp_approx(z);
      sum += e;
      dot += (double)e * z;
    }
    const double l = std::log(sum);
    lse[n] = (float)(l + mx);
    ent[n] = (float)(l - dot / sum);
    logp[n] = target[n] >= 0 ? (float)((x[target[n]] - mx) - l) : 0.0f;
  }
}

// in the forward pass this was: loss = sum_n w_n * (lse_n - logit_{n,target})
// so now we have: dlogit_{n,v} = w_n * (softmax_v - [v == target])
void xent_backward_inplace(float* logits, const float* lse, const int32_t* target, const float* w, int N, int V) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    float* __restrict x = logits + (long)n * V;
    const float wn = target[n] >= 0 ? w[n] : 0.0f;
    if (wn == 0.0f) {
      for (int v = 0; v < V; v++) x[v] = 0.0f;
      continue;
    }
    int v = 0;
#ifdef NRT_AVX2
    const __m256 l8 = _mm256_set1_ps(lse[n]), w8 = _mm256_set1_ps(wn);
    for (; v + 8 <= V; v += 8)
      _mm256_storeu_ps(x + v, _mm256_mul_ps(w8, exp8(_mm256_sub_ps(_mm256_loadu_ps(x + v), l8))));
#endif
    for (; v < V; v++) x[v] = wn * exp_approx(x[v] - lse[n]);
    x[target[n]] -= wn;
  }
}

}  // namespace nrt
