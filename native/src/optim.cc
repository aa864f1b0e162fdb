// AdamW over the flat parameter buffer, with global-norm gradient clipping.
//   g' = g * min(1, clip / ||g||)
//   m = b1 m + (1-b1) g' ; v = b2 v + (1-b2) g'^2
//   p -= lr * ( (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + wd * p )     (wd only where the table says decay)
#include <omp.h>

#include <cmath>
#include <vector>

#include "model.h"

namespace nrt {

// Sum of squares in double, by static per-thread blocks added in thread order: reproducible per thread count.
double grad_norm(const float* g, int64_t n) {
  int nt = omp_get_max_threads();
  std::vector<double> part(nt, 0.0);
#pragma omp parallel num_threads(nt)
  {
    double s = 0;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    part[omp_get_thread_num()] = s;
  }
  double s = 0;
  for (double p : part) s += p;
  return std::sqrt(s);
}

double adamw_step(const Config& c, float* p, const float* g, float* m, float* v, const AdamW& h) {
  const auto table = param_table(c);
  const int64_t n = table.back().offset + table.back().size;
  const double norm = grad_norm(g, n);
  const float scale = h.clip > 0 && norm > h.clip ? (float)(h.clip / (norm + 1e-6)) : 1.0f;
  const float bc1 = 1.0f - (float)std::pow(h.beta1, (double)h.step);
  const float bc2 = 1.0f - (float)std::pow(h.beta2, (double)h.step);
  for (const auto& t : table) {
    const float wd = t.decay ? h.weight_decay : 0.0f;
#pragma omp parallel for schedule(static)
    for (int64_t i = t.offset; i < t.offset + t.size; i++) {
      const float gi = g[i] * scale;
      m[i] = h.beta1 * m[i] + (1.0f - h.beta1) * gi;
      v[i] = h.beta2 * v[i] + (1.0f - h.beta2) * gi * gi;
      const float mh = m[i] / bc1, vh = v[i] / bc2;
      p[i] -= h.lr * (mh / (std::sqrt(vh) + h.eps) + wd * p[i]);
    }
  }
  return norm;
}

}  // namespace nrt
