// SwiGLU gate: out(N,F) = silu(gu[:, :F]) * gu[:, F:], gu(N,2F) rows are [g(F) | u(F)] (one fused gate/up matmul).
// Backward ACCUMULATES into dgu(N,2F); swiglu_backward_set overwrites it (no zeroing needed before).
// sig(g) = 1 / (1 + exp(-g)) uses the vectorised exp of vecmath.h (the same value in vector body and tail).
#include <cmath>

#include "kernels.h"
#include "vecmath.h"

namespace nrt {

static inline float sigmoid(float g) { return 1.0f / (1.0f + exp_approx(-g)); }

void swiglu_forward(float* out, const float* gu, int N, int F) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const float* __restrict g = gu + (long)n * 2 * F;
    const float* __restrict u = g + F;
    float* __restrict o = out + (long)n * F;
    int i = 0;
#ifdef NRT_AVX2
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (; i + 8 <= F; i += 8) {
      __m256 gv = _mm256_loadu_ps(g + i);
      __m256 sg = _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(zero, gv))));
      _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_mul_ps(gv, sg), _mm256_loadu_ps(u + i)));
    }
#endif
    for (; i < F; i++) o[i] = g[i] * sigmoid(g[i]) * u[i];
  }
}

// in the forward pass this was: out = g * sig(g) * u
// so now we have: du += dout * g * sig(g) ; dg += dout * u * sig(g) * (1 + g * (1 - sig(g)))
// ACC = false writes (=) instead, for swiglu_backward_set.
template <bool ACC>
static void swiglu_backward_impl(float* dgu, const float* dout, const float* gu, int N, int F) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const float* __restrict g = gu + (long)n * 2 * F;
    const float* __restrict u = g + F;
    const float* __restrict dy = dout + (long)n * F;
    float* __restrict dg = dgu + (long)n * 2 * F;
    float* __restrict du = dg + F;
    int i = 0;
#ifdef NRT_AVX2
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (; i + 8 <= F; i += 8) {
      __m256 gv = _mm256_loadu_ps(g + i), uv = _mm256_loadu_ps(u + i), d = _mm256_loadu_ps(dy + i);
      __m256 sg = _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(zero, gv))));
      __m256 dsg = _mm256_mul_ps(d, sg);
      __m256 t = _mm256_add_ps(one, _mm256_mul_ps(gv, _mm256_sub_ps(one, sg)));
      __m256 du8 = _mm256_mul_ps(dsg, gv), dg8 = _mm256_mul_ps(_mm256_mul_ps(dsg, uv), t);
      if (ACC) du8 = _mm256_add_ps(_mm256_loadu_ps(du + i), du8), dg8 = _mm256_add_ps(_mm256_loadu_ps(dg + i), dg8);
      _mm256_storeu_ps(du + i, du8);
      _mm256_storeu_ps(dg + i, dg8);
    }
#endif
    for (; i < F; i++) {
      const float sg = sigmoid(g[i]), dsg = dy[i] * sg;
      const float du1 = dsg * g[i], dg1 = dsg * u[i] * (1.0f + g[i] * (1.0f - sg));
      du[i] = ACC ? du[i] + du1 : du1;
      dg[i] = ACC ? dg[i] + dg1 : dg1;
    }
  }
}

void swiglu_backward(float* dgu, const float* dout, const float* gu, int N, int F) {
  swiglu_backward_impl<true>(dgu, dout, gu, N, F);
}

void swiglu_backward_set(float* dgu, const float* dout, const float* gu, int N, int F) {
  swiglu_backward_impl<false>(dgu, dout, gu, N, F);
}

}  // namespace nrt
