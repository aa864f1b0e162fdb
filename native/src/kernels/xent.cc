// Softmax cross-entropy over the vocabulary, per row of logits(N,V):
//   lse = log sum_v exp(logit_v) ; logp = logit_target - lse ; ent = lse - sum_v p_v logit_v
// Rows whose target is -1 get logp = 0 (their entropy is still computed).
#include <cmath>

#include "kernels.h"

namespace nrt {

void xent_forward(float* lse, float* logp, float* ent, const float* logits, const int32_t* target, int N, int V) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const float* x = logits + (long)n * V;
    float mx = -INFINITY;
    for (int v = 0; v < V; v++) mx = x[v] > mx ? x[v] : mx;
    double sum = 0.0, dot = 0.0;
    for (int v = 0; v < V; v++) {
      double e = std::exp((double)(x[v] - mx));
      sum += e;
      dot += e * (x[v] - mx);
    }
    double l = std::log(sum);
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
    float* x = logits + (long)n * V;
    const float wn = target[n] >= 0 ? w[n] : 0.0f;
    if (wn == 0.0f) {
      for (int v = 0; v < V; v++) x[v] = 0.0f;
      continue;
    }
    for (int v = 0; v < V; v++) x[v] = wn * std::exp(x[v] - lse[n]);
    x[target[n]] -= wn;
  }
}

}  // namespace nrt
