// Linear layers without bias: out(N,OUT) = inp(N,IN) @ weight(OUT,IN)^T, weight in Hugging Face (out, in) layout.
// Backward ACCUMULATES into dinp and dweight.
#include <cblas.h>

#include <algorithm>
#include <vector>

#include "kernels.h"
#include "lanes.h"

namespace nrt {

#ifdef NRT_AVX2
// ---- few rows (a sampling step: one row per stream), out = inp @ weight^T without packing the weight
// OpenBLAS packs the whole weight for every call, and with few rows that copy costs more than the product (a
// 16-row step of a 135M model copied all 540 MB of weights, then read them again). Here the rows of inp are the
// vector lanes instead: inp is transposed into xT (IN, NV lanes, zero-padded), and every weight element is
// broadcast once and multiplied into all rows at once, acc[o] += w[o][k] * xT[k], the weight read once, in order,
// straight from its (OUT, IN) layout. Each out[n][o] is one FMA chain over k in order, so it does not depend on
// the other rows, the blocking or the thread count.

// OB weight rows (out columns o..o+OB, OB * IN contiguous floats) against all N <= NV * LW rows. The block two
// blocks ahead is prefetched into L2 as one linear stream, OB lines every 16 k, so that memory sees sequential
// reads rather than OB interleaved rows (measured on the 135M step, one Zen 4 core, 16 rows: ~100 GFLOP/s, against
// ~75 prefetching each row 4 lines ahead, ~40 for OpenBLAS; more accumulators were slower). A prefetch past the
// end of the buffer does not fault.
template <class L, int NV, int OB>
static void rows_block(float* out, const float* xT, const float* w, int N, int IN, int OUT, bool accumulate) {
  constexpr int LW = L::W;
  typename L::V a[OB][NV];
  for (int o = 0; o < OB; o++)
    for (int v = 0; v < NV; v++) a[o][v] = L::zero();
  const char* ahead = (const char*)(w + 2L * OB * IN);
  for (int k = 0; k < IN; k++) {
    if (k % 16 == 0)
      for (int o = 0; o < OB; o++) _mm_prefetch(ahead + ((long)(k / 16) * OB + o) * 64, _MM_HINT_T1);
    typename L::V x[NV];
    for (int v = 0; v < NV; v++) x[v] = L::load(xT + ((long)k * NV + v) * LW);
    for (int o = 0; o < OB; o++) {
      const typename L::V wb = L::bcast(w + (long)o * IN + k);
      for (int v = 0; v < NV; v++) a[o][v] = L::fma(wb, x[v], a[o][v]);
    }
  }
  float t[OB][NV * LW];
  for (int o = 0; o < OB; o++)
    for (int v = 0; v < NV; v++) L::store(t[o] + v * LW, a[o][v]);
  for (int n = 0; n < N; n++) {
    float* __restrict y = out + (long)n * OUT;
    if (accumulate)
      for (int o = 0; o < OB; o++) y[o] += t[o][n];
    else
      for (int o = 0; o < OB; o++) y[o] = t[o][n];
  }
}

// OB weight rows at a time: 8 for one vector of rows; with AVX-512's 32 registers 8 for two (16 accumulators), 4
// for more (measured at 16 and 32 rows: 8 beat 6, 12 and 16 for one vector, 4 for two); with AVX2's 16, fewer.
// More rows than NV vectors hold are taken in chunks of NV * W rows, each block of weight rows against every chunk
// in turn, so that the weights still stream from memory once (the chunks after the first find the block in L1).
template <class L, int NV>
static void rows_all(float* out, const float* inp, const float* w, int N, int IN, int OUT, bool accumulate) {
  constexpr int OB = NV == 1 ? 8 : L::regs == 32 ? (NV == 2 ? 8 : 4) : (NV == 2 ? 4 : 2), CH = NV * L::W;
  const int nc = (N + CH - 1) / CH;
  static thread_local std::vector<float> xT;  // chunk c: (IN, CH) at c * IN * CH, zero-padded
  xT.assign((size_t)nc * IN * CH, 0.0f);
  for (int n = 0; n < N; n++)
    for (int k = 0; k < IN; k++) xT[((size_t)(n / CH) * IN + k) * CH + n % CH] = inp[(long)n * IN + k];
  const float* x = xT.data();
  const int nb = OUT / OB;
  // dynamic chunks of 16 blocks (~300 KB of a 576-wide weight): a thread that shares its core with another process
  // takes fewer, instead of holding the other up at the end (the results do not depend on who computes a block)
#pragma omp parallel for schedule(dynamic, 16)
  for (int b = 0; b < nb; b++)
    for (int c = 0; c < nc; c++)
      rows_block<L, NV, OB>(out + (long)c * CH * OUT + (long)b * OB, x + (size_t)c * IN * CH, w + (long)b * OB * IN,
                            std::min(CH, N - c * CH), IN, OUT, accumulate);
  for (int o = nb * OB; o < OUT; o++)
    for (int c = 0; c < nc; c++)
      rows_block<L, NV, 1>(out + (long)c * CH * OUT + o, x + (size_t)c * IN * CH, w + (long)o * IN,
                           std::min(CH, N - c * CH), IN, OUT, accumulate);
}

#endif

static void matmul_forward_blas(float* out, const float* inp, const float* weight, int N, int IN, int OUT,
                                bool accumulate) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OUT, IN, 1.0f, inp, IN, weight, IN, accumulate ? 1.0f : 0.0f,
              out, OUT);
}

void matmul_forward_rows(float* out, const float* inp, const float* weight, int N, int IN, int OUT,
                         bool accumulate) {
#ifndef NRT_AVX2
  return matmul_forward_blas(out, inp, weight, N, IN, OUT, accumulate);
#else
  if (N > MATMUL_ROWS_MAX || N < 1) return matmul_forward_blas(out, inp, weight, N, IN, OUT, accumulate);
  // AVX-512: one or two vectors of rows, more in chunks of two; AVX2: up to four, more in chunks of four
  if (N <= Lanes::W) return rows_all<Lanes, 1>(out, inp, weight, N, IN, OUT, accumulate);
  if (N <= 2 * Lanes::W || Lanes::regs == 32) return rows_all<Lanes, 2>(out, inp, weight, N, IN, OUT, accumulate);
  if (N <= 3 * Lanes::W) return rows_all<Lanes, 3>(out, inp, weight, N, IN, OUT, accumulate);
  rows_all<Lanes, 4>(out, inp, weight, N, IN, OUT, accumulate);
#endif
}

void matmul_forward(float* out, const float* inp, const float* weight, int N, int IN, int OUT, bool accumulate) {
  if (N <= MATMUL_ROWS_MAX) return matmul_forward_rows(out, inp, weight, N, IN, OUT, accumulate);
  matmul_forward_blas(out, inp, weight, N, IN, OUT, accumulate);
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
