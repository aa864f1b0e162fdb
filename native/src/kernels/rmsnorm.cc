// RMSNorm: out(N,C) = inp * rstd * weight, rstd(N) = 1 / sqrt(mean(inp^2) + eps).
// Backward ACCUMULATES into dinp(N,C) and dweight(C).
#include <omp.h>

#include <cmath>
#include <vector>

#include "kernels.h"

namespace nrt {

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C, float eps) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const float* __restrict x = inp + (long)n * C;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int i = 0; i < C; i++) ss += x[i] * x[i];
    float r = 1.0f / std::sqrt(ss / C + eps);
    rstd[n] = r;
    float* __restrict o = out + (long)n * C;
#pragma omp simd
    for (int i = 0; i < C; i++) o[i] = x[i] * r * weight[i];
  }
}

// in the forward pass this was: xh_i = x_i * r, out_i = xh_i * w_i, r = (mean(x^2) + eps)^(-1/2)
// so now we have: dw_i += sum_n dout_i * xh_i
//                 dx_i += r * (dout_i w_i - xh_i * mean_j(dout_j w_j xh_j))
// dweight is summed per thread over a static block of rows, then the partial sums are added in thread order,
// so the result is the same for a given thread count. Row sums are vectorised (8 lanes added in a fixed order).
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int N, int C) {
  int nt = omp_get_max_threads();
  std::vector<float> part((size_t)nt * C, 0.0f);
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num();
    float* __restrict dw = part.data() + (size_t)t * C;
#pragma omp for schedule(static)
    for (int n = 0; n < N; n++) {
      const float* __restrict x = inp + (long)n * C;
      const float* __restrict dy = dout + (long)n * C;
      float* __restrict dx = dinp + (long)n * C;
      float r = rstd[n];
      float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (int i = 0; i < C; i++) {
        float xh = x[i] * r;
        dot += dy[i] * weight[i] * xh;
        dw[i] += dy[i] * xh;
      }
      dot /= C;
#pragma omp simd
      for (int i = 0; i < C; i++) dx[i] += r * (dy[i] * weight[i] - x[i] * r * dot);
    }
  }
  if (dweight)
    for (int t = 0; t < nt; t++)
      for (int i = 0; i < C; i++) dweight[i] += part[(size_t)t * C + i];
}

// Per-head RMSNorm: each (row n, head h) vector of HS values is normalised on its own, with one weight (HS).
void rmsnorm_heads_forward(float* x, int stride, float* xin, int in_stride, float* rstd, int rstd_stride,
                           const float* weight, int N, int nheads, int HS, float eps) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++)
    for (int h = 0; h < nheads; h++) {
      float* __restrict v = x + (long)n * stride + h * HS;
      float* __restrict keep = xin + (long)n * in_stride + h * HS;
      float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
      for (int i = 0; i < HS; i++) ss += v[i] * v[i];
      const float r = 1.0f / std::sqrt(ss / HS + eps);
      rstd[(long)n * rstd_stride + h] = r;
#pragma omp simd
      for (int i = 0; i < HS; i++) {
        keep[i] = v[i];
        v[i] = v[i] * r * weight[i];
      }
    }
}

// in the forward pass this was rmsnorm over each head (see rmsnorm_backward), so per (n, h), with xh = xin * r:
//   dw_i += dy_i * xh_i ; dx_i = r * (dy_i w_i - xh_i * mean_j(dy_j w_j xh_j)), written over dy in place.
// dweight is summed per thread over a static block of rows, then added in thread order (deterministic).
void rmsnorm_heads_backward(float* dx, int stride, float* dweight, const float* xin, int in_stride, const float* rstd,
                            int rstd_stride, const float* weight, int N, int nheads, int HS) {
  int nt = omp_get_max_threads();
  std::vector<float> part((size_t)nt * HS, 0.0f);
#pragma omp parallel num_threads(nt)
  {
    float* __restrict dw = part.data() + (size_t)omp_get_thread_num() * HS;
#pragma omp for schedule(static)
    for (int n = 0; n < N; n++)
      for (int h = 0; h < nheads; h++) {
        float* __restrict dy = dx + (long)n * stride + h * HS;
        const float* __restrict x = xin + (long)n * in_stride + h * HS;
        const float r = rstd[(long)n * rstd_stride + h];
        float dot = 0.0f;
        for (int i = 0; i < HS; i++) {
          const float xh = x[i] * r;
          dot += dy[i] * weight[i] * xh;
          dw[i] += dy[i] * xh;
        }
        dot /= HS;
        for (int i = 0; i < HS; i++) dy[i] = r * (dy[i] * weight[i] - x[i] * r * dot);
      }
  }
  if (dweight)
    for (int t = 0; t < nt; t++)
      for (int i = 0; i < HS; i++) dweight[i] += part[(size_t)t * HS + i];
}

}  // namespace nrt
