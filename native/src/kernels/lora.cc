// LoRA deltas (PEFT's LoraLayer, no dropout): out(N, OUT) += scale * (inp @ A^T) @ B^T, A (R, IN), B (OUT, R), in
// Hugging Face (out, in) layout. Split in two so that projections reading one input share the first product:
//   down: u = inp @ [A_1; …; A_m]^T for m targets at once ; up: out_k += scale * u_k @ B_k^T per target.
// Outputs and u may be column blocks of wider matrices (row strides ldo, ldu, ldt, ldd).
#include <cblas.h>
#include <omp.h>

#include "kernels.h"

namespace nrt {

// f(a, b) on one contiguous part [a, b) of [0, n) per thread, each part a single-threaded product (OpenBLAS runs
// one thread inside a parallel region). For the products whose output is only R to 3R (16-48) wide with a long
// inner dimension, which OpenBLAS's own threading hardly speeds up (measured at the 135M shape, N 512: u = x A^T
// 0.93 ms a layer on one thread, 0.89 on two). The parts are fixed by the thread count, so results are too.
template <class F>
static void split_range(int n, F f) {
  const int T = omp_get_max_threads();
  if (T == 1 || n < 64) return f(0, n);
#pragma omp parallel num_threads(T)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int a = (int)((long)n * t / nt), b = (int)((long)n * (t + 1) / nt);
    if (b > a) f(a, b);
  }
}

void lora_down(float* u, int ldu, const float* inp, const float* A, int N, int IN, int RM) {
  split_range(N, [&](int a, int b) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b - a, RM, IN, 1.0f, inp + (long)a * IN, IN, A, IN, 0.0f,
                u + (long)a * ldu, ldu);
  });
}

void lora_up(float* out, int ldo, const float* u, int ldu, const float* B, int N, int OUT, int R, float scale) {
  split_range(N, [&](int a, int b) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b - a, OUT, R, scale, u + (long)a * ldu, ldu, B, R, 1.0f,
                out + (long)a * ldo, ldo);
  });
}

// in the forward pass this was: out += s * u @ B^T
// so now we have: dB (OUT, R) += s * dout^T @ u ; t (N, R) = dout @ B (= dL/du / s)
void lora_up_backward(float* dB, float* t, int ldt, const float* dout, int ldd, const float* u, int ldu,
                      const float* B, int N, int OUT, int R, float scale) {
  split_range(OUT, [&](int a, int b) {  // dB's rows a..b: dout's columns a..b
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, b - a, R, N, scale, dout + a, ldd, u, ldu, 1.0f,
                dB + (long)a * R, R);
  });
  split_range(N, [&](int a, int b) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b - a, R, OUT, 1.0f, dout + (long)a * ldd, ldd, B, R, 0.0f,
                t + (long)a * ldt, ldt);
  });
}

// in the forward pass this was: u = inp @ A^T, and dL/du = s * t
// so now we have: dA (RM, IN) += s * t^T @ inp ; dinp (N, IN) += s * t @ A
void lora_down_backward(float* dinp, float* dA, const float* t, int ldt, const float* inp, const float* A, int N,
                        int IN, int RM, float scale) {
  split_range(IN, [&](int a, int b) {  // dA's columns a..b: inp's columns a..b
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, RM, b - a, N, scale, t, ldt, inp + a, IN, 1.0f, dA + a, IN);
  });
  split_range(N, [&](int a, int b) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b - a, IN, RM, scale, t + (long)a * ldt, ldt, A, IN, 1.0f,
                dinp + (long)a * IN, IN);
  });
}

}  // namespace nrt
