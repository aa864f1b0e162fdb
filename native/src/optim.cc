// AdamW over the flat buffer of what is trained (the model's parameters, or a LoRA adapter's), with global-norm gradient clipping.
//   g' = g * min(1, clip / ||g||)
//   m = b1 m + (1-b1) g' ; v = b2 v + (1-b2) g'^2
//   p -= lr * ( (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + wd * p )     (wd only where the table says decay)
// Each thread takes one contiguous slice of the buffer (the same slices for a given thread count), so there is
// one parallel region per call, and the loops vectorise: hyperparameters are copied to locals and the buffers are
// __restrict, so the compiler need not fear that writing m[i] changes lr.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "model.h"

namespace nrt {

static inline void slice(int64_t n, int t, int nt, int64_t* lo, int64_t* hi) {
  *lo = n * t / nt;
  *hi = n * (t + 1) / nt;
}

// Sum of squares in double over each thread's slice (8 lanes, added in a fixed order), slices added in thread
// order: reproducible per thread count.
double grad_norm(const float* g, int64_t n) {
  const int nt = omp_get_max_threads();
  std::vector<double> part(nt, 0.0);
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    int64_t lo, hi;
    slice(n, t, nt, &lo, &hi);
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = lo; i < hi; i++) s += (double)g[i] * g[i];
    part[t] = s;
  }
  double s = 0;
  for (double p : part) s += p;
  return std::sqrt(s);
}

static void adamw_range(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v,
                        int64_t lo, int64_t hi, float scale, float b1, float b2, float bc1, float bc2, float lr,
                        float eps, float wd) {
  const float ob1 = 1.0f - b1, ob2 = 1.0f - b2;
#pragma omp simd
  for (int64_t i = lo; i < hi; i++) {
    const float gi = g[i] * scale;
    const float mi = b1 * m[i] + ob1 * gi;
    const float vi = b2 * v[i] + ob2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float mh = mi / bc1, vh = vi / bc2;
    p[i] -= lr * (mh / (std::sqrt(vh) + eps) + wd * p[i]);
  }
}

double adamw_step(const Config& c, float* p, const float* g, float* m, float* v, const AdamW& h) {
  const auto table = trainable_table(c);
  const int64_t n = table.back().offset + table.back().size;
  const double norm = grad_norm(g, n);
  const float scale = h.clip > 0 && norm > h.clip ? (float)(h.clip / (norm + 1e-6)) : 1.0f;
  const float bc1 = 1.0f - (float)std::pow(h.beta1, (double)h.step);
  const float bc2 = 1.0f - (float)std::pow(h.beta2, (double)h.step);
  const float b1 = h.beta1, b2 = h.beta2, lr = h.lr, eps = h.eps, decay = h.weight_decay;
#pragma omp parallel
  {
    int64_t lo, hi;
    slice(n, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
    for (const auto& t : table) {
      const int64_t a = std::max(lo, t.offset), b = std::min(hi, t.offset + t.size);
      if (a < b) adamw_range(p, g, m, v, a, b, scale, b1, b2, bc1, bc2, lr, eps, t.decay ? decay : 0.0f);
    }
  }
  return norm;
}

}  // namespace nrt
