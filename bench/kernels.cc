// Per-kernel timings of the blocked attention against its naive oracle, with the largest difference between
// the two (relative to the largest value), plus SwiGLU and cross-entropy, on the reference step's shapes
// (B=16, T=64, NH=4, HS=32, F=384, V=512) and one SmolLM2-135M layer's attention (2 x 256 tokens); then the few-row
// products (matmul_forward_rows) against their oracle, and one sampling step's products at the SmolLM2-135M and the
// reference shapes, that kernel against OpenBLAS. Plain C++ over native/src/kernels, no Node:
//   g++ -std=c++17 -O3 -march=native -fopenmp -fno-math-errno -Inative/src
//       -I/usr/include/x86_64-linux-gnu/openblas-openmp bench/kernels.cc
//       native/src/kernels/{attention,swiglu,xent,matmul,lora}.cc -o /tmp/nrt-kernels
//       -L/usr/lib/x86_64-linux-gnu/openblas-openmp -Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-openmp -lopenblas
//   && OMP_NUM_THREADS=1 /tmp/nrt-kernels
// (one command line; the OpenBLAS paths are Debian's, as in native/binding.gyp)
// Exits 1 if a fast kernel and its naive oracle differ by more than 1e-5 of the scale.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <initializer_list>
#include <cstdio>
#include <random>
#include <vector>

#include "kernels/kernels.h"

using namespace nrt;

static void matmul_forward_blas_only(float* out, const float* inp, const float* w, int N, int IN, int OUT, bool acc) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OUT, IN, 1.0f, inp, IN, w, IN, acc ? 1.0f : 0.0f, out, OUT);
}

static double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static double rel_maxdiff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0, s = 0;
  for (size_t i = 0; i < a.size(); i++) {
    m = std::max(m, (double)std::fabs(a[i] - b[i]));
    s = std::max(s, (double)std::fabs(b[i]));
  }
  return s > 0 ? m / s : m;
}

// best of `reps` timings of f(), in ms
template <typename Fn>
static double best_ms(int reps, Fn f) {
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t = now();
    f();
    best = std::min(best, now() - t);
  }
  return best * 1e3;
}

// One sampling step's products (L layers: QKV, output, gate+up, down; then the V-wide output layer) for N rows,
// the few-row kernel and OpenBLAS interleaved, best of 5, at each N of `ns`.
static void sampling_products(const char* name, int C, int QKV, int F, int L, int V, std::initializer_list<int> ns,
                              std::mt19937& rng) {
  std::normal_distribution<float> nd;
  const long per = (long)QKV * C + (long)C * C + 2L * F * C + (long)C * F;
  std::vector<float> P(per * L + (long)V * C);
  for (auto& v : P) v = 0.02f * nd(rng);
  printf("\n%s sampling step, products only, %d thread(s), ms (rows kernel / OpenBLAS):\n", name,
         omp_get_max_threads());
  for (int n : ns) {
    std::vector<float> x((size_t)n * std::max(C, F)), y((size_t)n * std::max({V, QKV, 2 * F}));
    for (auto& v : x) v = nd(rng);
    auto step = [&](bool rows) {
      auto mm = rows ? matmul_forward_rows : matmul_forward_blas_only;
      for (int l = 0; l < L; l++) {
        const float* b = P.data() + per * l;
        mm(y.data(), x.data(), b, n, C, QKV, false);
        mm(y.data(), x.data(), b + (long)QKV * C, n, C, C, true);
        mm(y.data(), x.data(), b + (long)QKV * C + (long)C * C, n, C, 2 * F, false);
        mm(y.data(), x.data(), b + (long)QKV * C + (long)C * C + 2L * F * C, n, F, C, true);
      }
      mm(y.data(), x.data(), P.data() + per * L, n, C, V, false);
    };
    const int reps = per * L < 1 << 22 ? 50 : 1;  // a step in cache takes well under a millisecond
    double tr = 1e30, tb = 1e30;
    for (int r = 0; r < 5; r++) {
      tr = std::min(tr, best_ms(reps, [&] { step(true); }));
      tb = std::min(tb, best_ms(reps, [&] { step(false); }));
    }
    const double gf = 2.0 * n * (per * L + (double)V * C) / 1e6;
    printf("  N=%3d  %8.3f / %8.3f   (%5.1f / %5.1f GFLOP/s)\n", n, tr, tb, gf / tr, gf / tb);
  }
}

// The LoRA products (lora.cc) against the same products through OpenBLAS, one call each: the largest difference
// on odd shapes, then one SmolLM2-135M layer's worth (N 512 tokens, rank R, the seven targets in their four
// groups: q k v over C, o over C, gate up over C, down over F), best of 20, ms. The OpenBLAS forms are what lora.cc
// ran before its own kernels.
struct LoraShape {
  int N, IN, OUT, R;
};
static void lora_blas(std::vector<float>& out, std::vector<float>& dB, std::vector<float>& t, std::vector<float>& dA,
                      std::vector<float>& dinp, const std::vector<float>& u, const std::vector<float>& B,
                      const std::vector<float>& dout, const std::vector<float>& inp, const std::vector<float>& A,
                      const LoraShape& s, float sc) {
  const int N = s.N, IN = s.IN, OUT = s.OUT, R = s.R;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OUT, R, sc, u.data(), R, B.data(), R, 1.0f, out.data(), OUT);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OUT, R, N, sc, dout.data(), OUT, u.data(), R, 1.0f, dB.data(),
              R);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, R, OUT, 1.0f, dout.data(), OUT, B.data(), R, 0.0f,
              t.data(), R);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, R, IN, N, sc, t.data(), R, inp.data(), IN, 1.0f, dA.data(), IN);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IN, R, sc, t.data(), R, A.data(), IN, 1.0f, dinp.data(),
              IN);
}
static void lora_ours(std::vector<float>& out, std::vector<float>& dB, std::vector<float>& t, std::vector<float>& dA,
                      std::vector<float>& dinp, const std::vector<float>& u, const std::vector<float>& B,
                      const std::vector<float>& dout, const std::vector<float>& inp, const std::vector<float>& A,
                      const LoraShape& s, float sc) {
  lora_up(out.data(), s.OUT, u.data(), s.R, B.data(), s.N, s.OUT, s.R, sc);
  lora_up_backward(dB.data(), t.data(), s.R, dout.data(), s.OUT, u.data(), s.R, B.data(), s.N, s.OUT, s.R, sc);
  lora_down_backward(dinp.data(), dA.data(), t.data(), s.R, inp.data(), A.data(), s.N, s.IN, s.R, sc);
}
static bool lora_products(std::mt19937& rng) {
  std::normal_distribution<float> nd(0, 1);
  bool ok = true;
  auto fill = [&](size_t n) {
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng);
    return v;
  };
  auto check = [&](const LoraShape& s) {
    const auto u = fill((size_t)s.N * s.R), B = fill((size_t)s.OUT * s.R), dout = fill((size_t)s.N * s.OUT),
               inp = fill((size_t)s.N * s.IN), A = fill((size_t)s.R * s.IN);
    std::vector<float> o1 = fill((size_t)s.N * s.OUT), b1 = fill((size_t)s.OUT * s.R), t1((size_t)s.N * s.R, 3.0f),
                       a1 = fill((size_t)s.R * s.IN), d1 = fill((size_t)s.N * s.IN);
    auto o2 = o1, b2 = b1, t2 = t1, a2 = a1, d2 = d1;
    lora_blas(o1, b1, t1, a1, d1, u, B, dout, inp, A, s, 0.5f);
    lora_ours(o2, b2, t2, a2, d2, u, B, dout, inp, A, s, 0.5f);
    double e = 0;
    for (auto [x, y] : {std::pair{&o1, &o2}, {&b1, &b2}, {&t1, &t2}, {&a1, &a2}, {&d1, &d2}})
      e = std::max(e, rel_maxdiff(*y, *x));
    return e;
  };
  for (const LoraShape& s : std::vector<LoraShape>{
           {70, 96, 128, 16}, {1, 5, 3, 1}, {33, 100, 37, 5}, {17, 577, 1536, 48}, {512, 64, 576, 17}, {9, 8, 8, 8}}) {
    const double e = check(s);
    ok = ok && e < 1e-5;
    printf("lora N=%d IN=%d OUT=%d R=%d  vs OpenBLAS: %.1e\n", s.N, s.IN, s.OUT, s.R, e);
  }
  const int N = 512, C = 576, F = 1536, R = 16;
  printf("\nSmolLM2-135M layer's LoRA products (N %d, rank %d, 7 targets), %d thread(s), best of 20, ms "
         "(lora.cc / OpenBLAS):\n", N, R, omp_get_max_threads());
  double tot[2] = {0, 0};
  for (const LoraShape& s : std::vector<LoraShape>{{N, C, C, R},     {N, C, 192, R}, {N, C, 192, R}, {N, C, C, R},
                                                   {N, C, F, R},     {N, C, F, R},   {N, F, C, R}}) {
    const auto u = fill((size_t)s.N * s.R), B = fill((size_t)s.OUT * s.R), dout = fill((size_t)s.N * s.OUT),
               inp = fill((size_t)s.N * s.IN), A = fill((size_t)s.R * s.IN);
    std::vector<float> o((size_t)s.N * s.OUT), b((size_t)s.OUT * s.R), t((size_t)s.N * s.R), a((size_t)s.R * s.IN),
        d((size_t)s.N * s.IN);
    const double ours = best_ms(20, [&] { lora_ours(o, b, t, a, d, u, B, dout, inp, A, s, 0.5f); });
    const double blas = best_ms(20, [&] { lora_blas(o, b, t, a, d, u, B, dout, inp, A, s, 0.5f); });
    const double gf = 2.0 * s.N * s.R * (3.0 * s.OUT + 2.0 * s.IN) * 1e-6;
    tot[0] += ours, tot[1] += blas;
    printf("  IN %4d OUT %4d  %6.3f / %6.3f   (%5.1f / %5.1f GFLOP/s)\n", s.IN, s.OUT, ours, blas, gf / ours,
           gf / blas);
  }
  printf("  layer           %6.3f / %6.3f\n", tot[0], tot[1]);
  return ok;
}

int main() {
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0, 1);
  bool ok = true;
  // fast vs naive on ragged sequences, MHA/GQA/MQA, head sizes 8..32, with and without a window
  const int cases[][4] = {{4, 4, 32, 0}, {4, 2, 16, 0}, {4, 1, 8, 3}, {4, 4, 32, 5}, {2, 2, 24, 0}, {4, 2, 16, 70}};
  for (const auto& cs : cases) {
    const int NH = cs[0], NKV = cs[1], HS = cs[2], W = cs[3];
    const std::vector<int> lens = {9, 1, 24, 6, 64, 17, 150, 65};
    const int S = (int)lens.size();
    std::vector<int32_t> ss(S + 1, 0);
    std::vector<int64_t> ao(S + 1, 0);
    for (int s = 0; s < S; s++) ss[s + 1] = ss[s] + lens[s], ao[s + 1] = ao[s] + (int64_t)NH * lens[s] * lens[s];
    const int N = ss[S], QKV = (NH + 2 * NKV) * HS, Q = NH * HS;
    std::vector<float> qkv((size_t)N * QKV), dout((size_t)N * Q);
    for (auto& x : qkv) x = nd(rng);
    for (auto& x : dout) x = nd(rng);
    std::vector<float> o1(N * Q), o2(N * Q), a1(ao[S]), a2(ao[S]), d1(N * QKV, 0.5f), d2(N * QKV, 0.5f);
    std::vector<float> d3(N * QKV, 7.0f), d4(N * QKV, 0.0f);
    attention_forward(o1.data(), a1.data(), qkv.data(), ss.data(), ao.data(), S, NH, NKV, HS, W);
    attention_forward_naive(o2.data(), a2.data(), qkv.data(), ss.data(), ao.data(), S, NH, NKV, HS, W);
    attention_backward(d1.data(), dout.data(), a1.data(), qkv.data(), ss.data(), ao.data(), S, NH, NKV, HS, W);
    attention_backward_naive(d2.data(), dout.data(), a2.data(), qkv.data(), ss.data(), ao.data(), S, NH, NKV, HS, W);
    attention_backward_set(d3.data(), dout.data(), a1.data(), qkv.data(), ss.data(), ao.data(), S, NH, NKV, HS, W);
    attention_backward_naive(d4.data(), dout.data(), a2.data(), qkv.data(), ss.data(), ao.data(), S, NH, NKV, HS, W);
    const double e[4] = {rel_maxdiff(o1, o2), rel_maxdiff(a1, a2), rel_maxdiff(d1, d2), rel_maxdiff(d3, d4)};
    for (double x : e) ok = ok && x < 1e-5;
    printf("attention NH=%d NKV=%d HS=%d W=%d  fast vs naive: out %.1e att %.1e dqkv %.1e (set %.1e)\n", NH, NKV, HS,
           W, e[0], e[1], e[2], e[3]);
  }

  const int S = 16, T = 64, NH = 4, HS = 32, N = S * T, QKV = 3 * NH * HS, Q = NH * HS, F = 384, V = 512;
  std::vector<int32_t> ss(S + 1);
  std::vector<int64_t> ao(S + 1);
  for (int s = 0; s <= S; s++) ss[s] = s * T, ao[s] = (int64_t)s * NH * T * T;
  std::vector<float> qkv((size_t)N * QKV), dout((size_t)N * Q), o((size_t)N * Q), a(ao[S]), d((size_t)N * QKV);
  for (auto& x : qkv) x = nd(rng);
  for (auto& x : dout) x = nd(rng);
  printf("\nreference shapes, %d thread(s), best of 20, ms per layer:\n", omp_get_max_threads());
  float *po = o.data(), *pa = a.data(), *pq = qkv.data(), *pd = d.data(), *pdy = dout.data();
  const int32_t* pss = ss.data();
  const int64_t* pao = ao.data();
  printf("  attention forward   %6.3f  (naive %6.3f)\n",
         best_ms(20, [&] { attention_forward(po, pa, pq, pss, pao, S, NH, NH, HS, 0); }),
         best_ms(20, [&] { attention_forward_naive(po, pa, pq, pss, pao, S, NH, NH, HS, 0); }));
  printf("  attention backward  %6.3f  (naive %6.3f)\n",
         best_ms(20, [&] { attention_backward_set(pd, pdy, pa, pq, pss, pao, S, NH, NH, HS, 0); }),
         best_ms(20, [&] { attention_backward_naive(pd, pdy, pa, pq, pss, pao, S, NH, NH, HS, 0); }));
  {
    // one SmolLM2-135M layer's attention at the training benchmark's 2 x 256 tokens (NH=9, NKV=3, HS=64)
    const int S2 = 2, T2 = 256, NH2 = 9, NKV2 = 3, HS2 = 64, N2 = S2 * T2, QKV2 = (NH2 + 2 * NKV2) * HS2;
    std::vector<int32_t> ss2(S2 + 1);
    std::vector<int64_t> ao2(S2 + 1);
    for (int s = 0; s <= S2; s++) ss2[s] = s * T2, ao2[s] = (int64_t)s * NH2 * T2 * T2;
    std::vector<float> q2((size_t)N2 * QKV2), dy2((size_t)N2 * NH2 * HS2), o2((size_t)N2 * NH2 * HS2), a2(ao2[S2]),
        d2((size_t)N2 * QKV2);
    for (auto& x : q2) x = nd(rng);
    for (auto& x : dy2) x = nd(rng);
    printf("  135M attention fwd  %6.3f  (2x256 tokens, 9/3 heads of 64)\n", best_ms(20, [&] {
             attention_forward(o2.data(), a2.data(), q2.data(), ss2.data(), ao2.data(), S2, NH2, NKV2, HS2, 0);
           }));
    printf("  135M attention bwd  %6.3f\n", best_ms(20, [&] {
             attention_backward_set(d2.data(), dy2.data(), a2.data(), q2.data(), ss2.data(), ao2.data(), S2, NH2, NKV2,
                                    HS2, 0);
           }));
  }
  std::vector<float> gu((size_t)N * 2 * F), act((size_t)N * F), dgu((size_t)N * 2 * F), lg((size_t)N * V), lg2;
  std::vector<float> lse(N), lp(N), en(N), w(N, 1.0f);
  std::vector<int32_t> tg(N);
  for (auto& x : gu) x = nd(rng);
  for (auto& x : lg) x = nd(rng);
  for (int i = 0; i < N; i++) tg[i] = i % V;
  printf("  swiglu forward      %6.3f\n", best_ms(20, [&] { swiglu_forward(act.data(), gu.data(), N, F); }));
  printf("  swiglu backward     %6.3f\n",
         best_ms(20, [&] { swiglu_backward_set(dgu.data(), act.data(), gu.data(), N, F); }));
  printf("  xent forward        %6.3f  (whole step)\n",
         best_ms(20, [&] { xent_forward(lse.data(), lp.data(), en.data(), lg.data(), tg.data(), N, V); }));
  printf("  xent backward       %6.3f  (whole step)\n", best_ms(20, [&] {
           lg2 = lg;
           xent_backward_inplace(lg2.data(), lse.data(), tg.data(), w.data(), N, V);
         }));

  // few-row products (matmul_forward_rows, the sampler's N <= MATMUL_ROWS_MAX) against the naive oracle, odd sizes
  for (const auto& sh : std::vector<std::array<int, 3>>{{1, 37, 13}, {5, 64, 9}, {16, 576, 963}, {17, 100, 40},
                                                         {32, 1536, 577}, {3, 8, 1}, {71, 200, 37}, {128, 64, 19}}) {
    const int n = sh[0], in = sh[1], out = sh[2];
    std::vector<float> x((size_t)n * in), wt((size_t)out * in), y1((size_t)n * out), y2;
    for (auto& v : x) v = nd(rng);
    for (auto& v : wt) v = nd(rng);
    for (auto& v : y1) v = nd(rng);
    y2 = y1;
    const bool acc = n % 2 == 1;
    matmul_forward_rows(y1.data(), x.data(), wt.data(), n, in, out, acc);
    matmul_forward_naive(y2.data(), x.data(), wt.data(), n, in, out, acc);
    const double e = rel_maxdiff(y1, y2);
    ok = ok && e < 1e-5;
    printf("matmul rows N=%d IN=%d OUT=%d%s  vs naive: %.1e\n", n, in, out, acc ? " (+=)" : "", e);
  }
  // one sampling step's products at the SmolLM2-135M shape (30 layers, C=576, QKV=960, F=1536, tied V=49152; the
  // weights ~540 MB, read from memory as in the sampler) and at the reference shape (4 layers, C=128, QKV=384,
  // F=384, V=512 untied; ~1 MB, in cache)
  sampling_products("SmolLM2-135M", 576, 960, 1536, 30, 49152, {1, 4, 8, 16, 24, 32, 64, 128}, rng);
  sampling_products("reference", 128, 384, 384, 4, 512, {16, 32, 64, 128}, rng);
  ok = lora_products(rng) && ok;
  if (!ok) printf("FAILED: a fast kernel and its naive oracle differ by more than 1e-5 of the scale\n");
  return ok ? 0 : 1;
}
