// Vectorised exp for the elementwise kernels (softmax, cross-entropy, SiLU), 8 floats at a time with AVX2+FMA,
// and the small AVX2 row helpers shared by attention.cc and sampler.cc.
//
// exp(x) = 2^n * exp(r), n = round(x / ln 2), r = x - n ln 2 (ln 2 split in two for accuracy), exp(r) by the
// Cephes degree-5 polynomial: relative error about 2 ulp over [-87.3, 88]; inputs are clamped to that range,
// so exp(-inf) gives ~0 (1e-38 or a denormal) rather than NaN. exp_approx is the same computation on one float,
// used for loop tails, so an element's value does not depend on whether it lands in a vector or in a tail.
// Without AVX2 everything falls back to std::exp.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define NRT_AVX2 1
#endif

namespace nrt {

namespace expc {
constexpr float hi = 88.0f, lo = -87.3365478515625f, log2e = 1.44269504088896341f;
constexpr float c1 = 0.693359375f, c2 = -2.12194440e-4f;
constexpr float p0 = 1.9875691500e-4f, p1 = 1.3981999507e-3f, p2 = 8.3334519073e-3f, p3 = 4.1665795894e-2f,
                p4 = 1.6666665459e-1f, p5 = 5.0000001201e-1f;
}  // namespace expc

#ifdef NRT_AVX2
inline __m256 exp8(__m256 x) {
  using namespace expc;
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(lo)), _mm256_set1_ps(hi));
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(log2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(c1), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(c2), r);
  __m256 z = _mm256_mul_ps(r, r);
  __m256 y = _mm256_set1_ps(p0);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(p1));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(p2));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(p3));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(p4));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(p5));
  y = _mm256_fmadd_ps(y, z, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

// horizontal sum of the 8 lanes, in a fixed order
inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float hmax8(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// y[e] (=, or += when acc) sum_{j in [j0, j1]} w[j * ldw] * x[j * ld + e], for e in [e0, e0 + 8 NE): a weighted
// sum of rows, accumulated in registers (attention's P @ V and dS @ K; with ldw > 1, P^T @ dY and dS^T @ Q)
template <int NE>
inline void wsum_rows_block(float* y, const float* w, long ldw, const float* x, long ld, int j0, int j1, int e0,
                            bool acc) {
  __m256 a[NE];
  for (int c = 0; c < NE; c++) a[c] = acc ? _mm256_loadu_ps(y + e0 + 8 * c) : _mm256_setzero_ps();
  for (int j = j0; j <= j1; j++) {
    const __m256 wj = _mm256_broadcast_ss(w + j * ldw);
    const float* r = x + j * ld + e0;
    for (int c = 0; c < NE; c++) a[c] = _mm256_fmadd_ps(wj, _mm256_loadu_ps(r + 8 * c), a[c]);
  }
  for (int c = 0; c < NE; c++) _mm256_storeu_ps(y + e0 + 8 * c, a[c]);
}
// the same for all e < HS, HS % 8 == 0
inline void wsum_rows(float* y, const float* w, long ldw, const float* x, long ld, int j0, int j1, int HS, bool acc) {
  int e = 0;
  for (; e + 32 <= HS; e += 32) wsum_rows_block<4>(y, w, ldw, x, ld, j0, j1, e, acc);
  switch ((HS - e) / 8) {
    case 3: wsum_rows_block<3>(y, w, ldw, x, ld, j0, j1, e, acc); break;
    case 2: wsum_rows_block<2>(y, w, ldw, x, ld, j0, j1, e, acc); break;
    case 1: wsum_rows_block<1>(y, w, ldw, x, ld, j0, j1, e, acc); break;
  }
}

// sum_e a[e] * b[e], HS % 8 == 0 (lanes added in a fixed order)
inline float dot8(const float* a, const float* b, int HS) {
  __m256 acc = _mm256_mul_ps(_mm256_loadu_ps(a), _mm256_loadu_ps(b));
  for (int e = 8; e < HS; e += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + e), _mm256_loadu_ps(b + e), acc);
  return hsum8(acc);
}

// the 8 dot products sum_e q[e] * k[r * ld + e], r < 8, HS % 8 == 0, as one vector: 8 independent FMA chains,
// then a transposing horizontal add (the sum order for each r is fixed)
inline __m256 dot8_rows8(const float* q, const float* k, long ld, int HS) {
  __m256 a[8];
  for (int r = 0; r < 8; r++) a[r] = _mm256_setzero_ps();
  for (int e = 0; e < HS; e += 8) {
    const __m256 qv = _mm256_loadu_ps(q + e);
    for (int r = 0; r < 8; r++) a[r] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + r * ld + e), a[r]);
  }
  const __m256 t0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  const __m256 t1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(t0, t1, 0x20), _mm256_permute2f128_ps(t0, t1, 0x31));
}

inline float exp_approx(float x) {
  using namespace expc;
  x = std::fmin(std::fmax(x, lo), hi);
  float n = std::nearbyint(x * log2e);
  float r = std::fma(-n, c1, x);
  r = std::fma(-n, c2, r);
  float z = r * r;
  float y = p0;
  y = std::fma(y, r, p1);
  y = std::fma(y, r, p2);
  y = std::fma(y, r, p3);
  y = std::fma(y, r, p4);
  y = std::fma(y, r, p5);
  y = std::fma(y, z, r + 1.0f);
  int32_t bits = ((int32_t)n + 127) << 23;
  float s;
  std::memcpy(&s, &bits, sizeof s);
  return y * s;
}
#else
inline float exp_approx(float x) { return std::exp(x); }
#endif

// out[i] = exp(in[i] - shift) for i < n; returns the sum of the outputs (lanes added in a fixed order).
inline float exp_shift_sum(float* out, const float* in, float shift, int n) {
  int i = 0;
  float sum = 0.0f;
#ifdef NRT_AVX2
  __m256 acc = _mm256_setzero_ps(), sh = _mm256_set1_ps(shift);
  for (; i + 8 <= n; i += 8) {
    __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(in + i), sh));
    _mm256_storeu_ps(out + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  sum = hsum8(acc);
#endif
  for (; i < n; i++) sum += (out[i] = exp_approx(in[i] - shift));
  return sum;
}

// max of in[0..n), n >= 1
inline float max_of(const float* in, int n) {
  int i = 0;
  float mx = -INFINITY;
#ifdef NRT_AVX2
  if (n >= 8) {
    __m256 m = _mm256_loadu_ps(in);
    for (i = 8; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(in + i));
    mx = hmax8(m);
  }
#endif
  for (; i < n; i++) mx = in[i] > mx ? in[i] : mx;
  return mx;
}

}  // namespace nrt
