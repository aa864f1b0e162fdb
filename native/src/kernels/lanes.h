// One vector register of floats, as the hand-written products see it: AVX-512 (16 lanes, 32 registers) where the
// compiler targets it, else AVX2 (8 lanes, 16 registers). Only under NRT_AVX2 (vecmath.h).
#pragma once
#include "vecmath.h"

#ifdef NRT_AVX2
namespace nrt {

#ifdef __AVX512F__
struct Lanes {
  using V = __m512;
  using M = __mmask16;  // the first n lanes of a partial vector
  static constexpr int W = 16, regs = 32;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V bcast(const float* p) { return _mm512_set1_ps(*p); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static M mask(int n) { return (M)((1u << n) - 1u); }  // 1 <= n <= 16
  static V load(const float* p, M m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, V v, M m) { _mm512_mask_storeu_ps(p, m, v); }
};
#else
struct Lanes {
  using V = __m256;
  using M = __m256i;
  static constexpr int W = 8, regs = 16;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static M mask(int n) {  // 1 <= n <= 8
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V load(const float* p, M m) { return _mm256_maskload_ps(p, m); }
  static void store(float* p, V v, M m) { _mm256_maskstore_ps(p, m, v); }
};
#endif

}  // namespace nrt
#endif
