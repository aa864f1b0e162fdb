// LoRA deltas (PEFT's LoraLayer, no dropout): out(N, OUT) += scale * (inp @ A^T) @ B^T, A (R, IN), B (OUT, R), in
// Hugging Face (out, in) layout. Split in two so that projections reading one input share the first product:
//   down: u = inp @ [A_1; …; A_m]^T for m targets at once ; up: out_k += scale * u_k @ B_k^T per target.
// Outputs and u may be column blocks of wider matrices (row strides ldo, ldu, ldt, ldd).
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels.h"
#include "lanes.h"

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

#ifdef NRT_AVX2
// ---- C (M, NC) += alpha * X^T @ Y by hand, X (K, M) and Y (K, NC) row-major (row strides ldx, ldy), for the two
// weight gradients whose inner dimension is the N tokens: dB = s dout^T @ u (R columns) and dA = s t^T @ inp (R
// to 3R rows). OpenBLAS runs these at ~40 GFLOP/s in a training step, as it packs the long operand for so little
// work; here the operands are read as they lie. A tile of MR rows by NV vectors of columns keeps MR * NV
// accumulators; per k it loads NV vectors of Y's row k and broadcasts MR consecutive elements of X's row k into
// them. Each C element is one FMA chain over k in order, then times alpha plus C: it does not depend on the tiling
// or the threads. (bench/kernels.cc's "LoRA products": at the 135M shape, N 512, R 16, cold operands, one Zen 4
// core, dB 2.6x and dA 1.3x OpenBLAS's speed.)

// MR x NV tile at C; the last of the NV vectors holds the lanes of `last`; rows past mr are computed, not stored
template <class L, int MR, int NV>
static void panel_tile(float* C, long ldc, const float* X, long ldx, const float* Y, long ldy, int K, float alpha,
                       int mr, typename L::M last) {
  constexpr int W = L::W;
  typename L::V a[MR][NV];
  // every loop over MR or NV fully unrolled, so that the accumulators are registers, not an array in memory
#pragma GCC unroll 32
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 32
    for (int v = 0; v < NV; v++) a[i][v] = L::zero();
  // the operands come cold from memory in a training step, X's and Y's rows a stride apart: C's tile is
  // prefetched before the k loop, the rows of X and Y some 400 FMAs ahead
  constexpr int PD = std::max(4, 400 / (MR * NV));
#pragma GCC unroll 32
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 32
    for (int v = 0; v < NV; v++)
      if (i < mr) _mm_prefetch((const char*)(C + i * ldc + v * W), _MM_HINT_T0);
  for (int k = 0; k < K; k++) {
    const float* x = X + k * ldx;
    const float* y = Y + k * ldy;
    if (k + PD < K) {
#pragma GCC unroll 32
      for (int v = 0; v < NV; v++) _mm_prefetch((const char*)(y + PD * ldy + v * W), _MM_HINT_T0);
      _mm_prefetch((const char*)(x + PD * ldx), _MM_HINT_T0);
      _mm_prefetch((const char*)(x + PD * ldx + MR - 1), _MM_HINT_T0);
    }
    typename L::V yv[NV];
#pragma GCC unroll 32
    for (int v = 0; v + 1 < NV; v++) yv[v] = L::load(y + v * W);
    yv[NV - 1] = L::load(y + (NV - 1) * W, last);
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++) {
      const typename L::V b = L::bcast(x + i);
#pragma GCC unroll 32
      for (int v = 0; v < NV; v++) a[i][v] = L::fma(b, yv[v], a[i][v]);
    }
  }
  const typename L::V al = L::set1(alpha);
#pragma GCC unroll 32
  for (int i = 0; i < MR; i++) {
    if (i >= mr) continue;
    float* c = C + i * ldc;
#pragma GCC unroll 32
    for (int v = 0; v < NV; v++) {
      const bool tail = v + 1 == NV;
      const typename L::V r = L::add(L::mul(a[i][v], al), tail ? L::load(c + v * W, last) : L::load(c + v * W));
      tail ? L::store(c + v * W, r, last) : L::store(c + v * W, r);
    }
  }
}

// columns [j0, j1) of one row tile, in chunks of NV vectors and a last chunk of 1 to NV, its last vector partial
template <class L, int MR, int NV>
static void panel_row(float* C, long ldc, const float* X, long ldx, const float* Y, long ldy, int K, float alpha,
                      int mr, int j0, int j1) {
  constexpr int W = L::W;
  int j = j0;
  for (; j + NV * W <= j1; j += NV * W)
    panel_tile<L, MR, NV>(C + j, ldc, X, ldx, Y + j, ldy, K, alpha, mr, L::mask(W));
  if (j == j1) return;
  const int n = j1 - j, nv = (n + W - 1) / W;
  const typename L::M last = L::mask(n - (nv - 1) * W);
  switch (nv) {  // 1 <= nv <= NV <= 4
    case 1: return panel_tile<L, MR, 1>(C + j, ldc, X, ldx, Y + j, ldy, K, alpha, mr, last);
    case 2: return panel_tile<L, MR, std::min(2, NV)>(C + j, ldc, X, ldx, Y + j, ldy, K, alpha, mr, last);
    case 3: return panel_tile<L, MR, std::min(3, NV)>(C + j, ldc, X, ldx, Y + j, ldy, K, alpha, mr, last);
    default: return panel_tile<L, MR, NV>(C + j, ldc, X, ldx, Y + j, ldy, K, alpha, mr, last);
  }
}

template <class L, int MR, int NV>
static void panel_gemm_t(float* C, long ldc, const float* X, long ldx, const float* Y, long ldy, int M, int NC, int K,
                         float alpha) {
  constexpr int CW = NV * L::W;
  const int rt = (M + MR - 1) / MR, ct = (NC + CW - 1) / CW;
  // row tile r, columns [j0, j1); a last tile of fewer than MR rows reads a copy of its columns of X, zero-padded
  // to MR (the tile reads MR, and past X's last row there may be nothing)
  auto run = [&](int r, int j0, int j1, std::vector<float>& pad) {
    const int i0 = r * MR, mr = std::min(MR, M - i0);
    const float* x = X + i0;
    long ld = ldx;
    if (mr < MR) {
      pad.assign((size_t)K * MR, 0.0f);
      for (int k = 0; k < K; k++) std::copy(x + k * ldx, x + k * ldx + mr, pad.data() + (size_t)k * MR);
      x = pad.data(), ld = MR;
    }
    panel_row<L, MR, NV>(C + i0 * ldc, ldc, x, ld, Y, ldy, K, alpha, mr, j0, j1);
  };
  // threads over row tiles when there are enough of them (dB), else over column chunks with every row tile inside
  // (dA: a strip of Y stays in cache across the row tiles)
  const int T = omp_get_max_threads();
  if (rt >= 2 * T || ct < 2 * T) {
#pragma omp parallel for schedule(static) if (T > 1 && rt > 1)
    for (int r = 0; r < rt; r++) {
      static thread_local std::vector<float> pad;
      run(r, 0, NC, pad);
    }
  } else {
#pragma omp parallel for schedule(static) if (T > 1)
    for (int c = 0; c < ct; c++) {
      static thread_local std::vector<float> pad;
      for (int r = 0; r < rt; r++) run(r, c * CW, std::min(NC, (c + 1) * CW), pad);
    }
  }
}

// the tile shape for NC columns: as many vectors across as NC needs, up to 4 (2 with AVX2's 16 registers), and as
// many rows as leave two to four registers for Y's row
static void panel_gemm(float* C, long ldc, const float* X, long ldx, const float* Y, long ldy, int M, int NC, int K,
                       float alpha) {
  if (M <= 0 || NC <= 0) return;
  const int nv = (NC + Lanes::W - 1) / Lanes::W;
  if (Lanes::regs == 32) {
    if (nv == 1) return panel_gemm_t<Lanes, 16, 1>(C, ldc, X, ldx, Y, ldy, M, NC, K, alpha);
    if (nv == 2) return panel_gemm_t<Lanes, 12, 2>(C, ldc, X, ldx, Y, ldy, M, NC, K, alpha);
    if (nv == 3) return panel_gemm_t<Lanes, 8, 3>(C, ldc, X, ldx, Y, ldy, M, NC, K, alpha);
    return panel_gemm_t<Lanes, 6, 4>(C, ldc, X, ldx, Y, ldy, M, NC, K, alpha);
  }
  if (nv == 1) return panel_gemm_t<Lanes, 8, 1>(C, ldc, X, ldx, Y, ldy, M, NC, K, alpha);
  panel_gemm_t<Lanes, 6, 2>(C, ldc, X, ldx, Y, ldy, M, NC, K, alpha);
}
#else
static void panel_gemm(float* C, long ldc, const float* X, long ldx, const float* Y, long ldy, int M, int NC, int K,
                       float alpha) {
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, NC, K, alpha, X, ldx, Y, ldy, 1.0f, C, ldc);
}
#endif

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
  panel_gemm(dB, R, dout, ldd, u, ldu, OUT, R, N, scale);
  split_range(N, [&](int a, int b) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b - a, R, OUT, 1.0f, dout + (long)a * ldd, ldd, B, R, 0.0f,
                t + (long)a * ldt, ldt);
  });
}

// in the forward pass this was: u = inp @ A^T, and dL/du = s * t
// so now we have: dA (RM, IN) += s * t^T @ inp ; dinp (N, IN) += s * t @ A
void lora_down_backward(float* dinp, float* dA, const float* t, int ldt, const float* inp, const float* A, int N,
                        int IN, int RM, float scale) {
  panel_gemm(dA, IN, t, ldt, inp, IN, RM, IN, N, scale);
  split_range(N, [&](int a, int b) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b - a, IN, RM, scale, t + (long)a * ldt, ldt, A, IN, 1.0f,
                dinp + (long)a * IN, IN);
  });
}

}  // namespace nrt
