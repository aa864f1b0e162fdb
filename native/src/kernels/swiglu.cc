// SwiGLU gate: out(N,F) = silu(g) * u where gu(N,2F) rows are [g(F) | u(F)] (one fused gate/up matmul).
// Backward ACCUMULATES into dgu(N,2F).
#include <cmath>

#include "kernels.h"

namespace nrt {

void swiglu_forward(float* out, const float* gu, int N, int F) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const float* g = gu + (long)n * 2 * F;
    const float* u = g + F;
    float* o = out + (long)n * F;
    for (int i = 0; i < F; i++) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  }
}

// in the forward pass this was: out = g * sig(g) * u
// so now we have: du += dout * g * sig(g) ; dg += dout * u * sig(g) * (1 + g * (1 - sig(g)))
void swiglu_backward(float* dgu, const float* dout, const float* gu, int N, int F) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const float* g = gu + (long)n * 2 * F;
    const float* u = g + F;
    const float* dy = dout + (long)n * F;
    float* dg = dgu + (long)n * 2 * F;
    float* du = dg + F;
    for (int i = 0; i < F; i++) {
      float sg = 1.0f / (1.0f + std::exp(-g[i]));
      du[i] += dy[i] * g[i] * sg;
      dg[i] += dy[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
    }
  }
}

}  // namespace nrt
