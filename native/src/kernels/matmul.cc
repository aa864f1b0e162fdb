// Linear layers without bias: out(N,OUT) = inp(N,IN) @ weight(OUT,IN)^T, weight in Hugging Face (out, in) layout.
// Backward ACCUMULATES into dinp and dweight.
#include <cblas.h>

#include "kernels.h"

namespace nrt {

void matmul_forward(float* out, const float* inp, const float* weight, int N, int IN, int OUT, bool accumulate) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OUT, IN, 1.0f, inp, IN, weight, IN, accumulate ? 1.0f : 0.0f,
              out, OUT);
}

// in the forward pass this was: out[n,o] = sum_i inp[n,i] * weight[o,i]
// so now we have: dinp[n,i] += sum_o dout[n,o] * weight[o,i]     (dout @ weight)
//                 dweight[o,i] += sum_n dout[n,o] * inp[n,i]     (dout^T @ inp)
void matmul_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight, int N,
                     int IN, int OUT) {
  if (dinp) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IN, OUT, 1.0f, dout, OUT, weight, IN, 1.0f, dinp, IN);
  if (dweight)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OUT, IN, N, 1.0f, dout, OUT, inp, IN, 1.0f, dweight, IN);
}

// The naive kernels are the fallback and the test oracle for the BLAS path (double accumulation).
void matmul_forward_naive(float* out, const float* inp, const float* weight, int N, int IN, int OUT, bool accumulate) {
  for (int n = 0; n < N; n++)
    for (int o = 0; o < OUT; o++) {
      double s = accumulate ? out[(long)n * OUT + o] : 0.0;
      for (int i = 0; i < IN; i++) s += (double)inp[(long)n * IN + i] * weight[(long)o * IN + i];
      out[(long)n * OUT + o] = (float)s;
    }
}

void matmul_backward_naive(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                           int N, int IN, int OUT) {
  if (dinp)
    for (int n = 0; n < N; n++)
      for (int i = 0; i < IN; i++) {
        double s = 0;
        for (int o = 0; o < OUT; o++) s += (double)dout[(long)n * OUT + o] * weight[(long)o * IN + i];
        dinp[(long)n * IN + i] += (float)s;
      }
  if (dweight)
    for (int o = 0; o < OUT; o++)
      for (int i = 0; i < IN; i++) {
        double s = 0;
        for (int n = 0; n < N; n++) s += (double)dout[(long)n * OUT + o] * inp[(long)n * IN + i];
        dweight[(long)o * IN + i] += (float)s;
      }
}

void bias_forward(float* x, const float* b, int N, int D) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    float* __restrict r = x + (long)n * D;
#pragma omp simd
    for (int d = 0; d < D; d++) r[d] += b[d];
  }
}

// in the forward pass this was: x_nd += b_d, so now we have: db_d += sum_n dx_nd (rows in order: deterministic)
void bias_backward(float* db, const float* dx, int N, int D) {
  for (int n = 0; n < N; n++) {
    const float* __restrict r = dx + (long)n * D;
#pragma omp simd
    for (int d = 0; d < D; d++) db[d] += r[d];
  }
}

}  // namespace nrt
