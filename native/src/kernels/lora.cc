// LoRA deltas (PEFT's LoraLayer, no dropout): out(N, OUT) += scale * (inp @ A^T) @ B^T, A (R, IN), B (OUT, R), in
// Hugging Face (out, in) layout. Split in two so that projections reading one input share the first product:
//   down: u = inp @ [A_1; …; A_m]^T for m targets at once ; up: out_k += scale * u_k @ B_k^T per target.
// Outputs and u may be column blocks of wider matrices (row strides ldo, ldu, ldt, ldd).
#include <cblas.h>

#include "kernels.h"

namespace nrt {

void lora_down(float* u, int ldu, const float* inp, const float* A, int N, int IN, int RM) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, RM, IN, 1.0f, inp, IN, A, IN, 0.0f, u, ldu);
}

void lora_up(float* out, int ldo, const float* u, int ldu, const float* B, int N, int OUT, int R, float scale) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OUT, R, scale, u, ldu, B, R, 1.0f, out, ldo);
}

// in the forward pass this was: out += s * u @ B^T
// so now we have: dB (OUT, R) += s * dout^T @ u ; t (N, R) = dout @ B (= dL/du / s)
void lora_up_backward(float* dB, float* t, int ldt, const float* dout, int ldd, const float* u, int ldu,
                      const float* B, int N, int OUT, int R, float scale) {
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OUT, R, N, scale, dout, ldd, u, ldu, 1.0f, dB, R);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, R, OUT, 1.0f, dout, ldd, B, R, 0.0f, t, ldt);
}

// in the forward pass this was: u = inp @ A^T, and dL/du = s * t
// so now we have: dA (RM, IN) += s * t^T @ inp ; dinp (N, IN) += s * t @ A
void lora_down_backward(float* dinp, float* dA, const float* t, int ldt, const float* inp, const float* A, int N,
                        int IN, int RM, float scale) {
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, RM, IN, N, scale, t, ldt, inp, IN, 1.0f, dA, IN);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IN, RM, scale, t, ldt, A, IN, 1.0f, dinp, IN);
}

}  // namespace nrt
