// A LoRA delta on one linear layer (PEFT's LoraLayer, no dropout): out(N, OUT) += scale * (inp @ A^T) @ B^T,
// A (R, IN), B (OUT, R), both in Hugging Face (out, in) layout. The output may be a column block of a wider matrix
// (row stride ldo), e.g. q's columns of the fused qkv rows.
#include <cblas.h>

#include "kernels.h"

namespace nrt {

void lora_forward(float* out, int ldo, float* u, const float* inp, const float* A, const float* B, int N, int IN,
                  int OUT, int R, float scale) {
  // u (N, R) = inp @ A^T
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, R, IN, 1.0f, inp, IN, A, IN, 0.0f, u, R);
  // out += scale * u @ B^T
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OUT, R, scale, u, R, B, R, 1.0f, out, ldo);
}

// in the forward pass this was: out += s * u @ B^T with u = inp @ A^T
// so now we have, with t = dout @ B (N, R):
//   dB (OUT, R) += s * dout^T @ u ; dA (R, IN) += s * t^T @ inp ; dinp (N, IN) += s * t @ A
void lora_backward(float* dinp, float* dA, float* dB, float* t, const float* dout, int ldd, const float* inp,
                   const float* u, const float* A, const float* B, int N, int IN, int OUT, int R, float scale) {
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OUT, R, N, scale, dout, ldd, u, R, 1.0f, dB, R);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, R, OUT, 1.0f, dout, ldd, B, R, 0.0f, t, R);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, R, IN, N, scale, t, R, inp, IN, 1.0f, dA, IN);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IN, R, scale, t, R, A, IN, 1.0f, dinp, IN);
}

}  // namespace nrt
