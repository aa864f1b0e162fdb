// Kernels of the Llama-family forward and backward pass, one file per layer.
//
// Notation used in every shape comment:
//   N  tokens in a packed batch (all sequences laid end to end)
//   C  hidden size, V vocabulary, F intermediate (MLP) size
//   NH query heads, NKV key/value heads, HS head size
//   Q = NH*HS, KV = NKV*HS, QKV = Q + 2*KV
// Matrices are row-major; weights are stored as Hugging Face stores them, (out, in).
// Arguments go outputs, then inputs, then sizes.
// Every *_backward ACCUMULATES into its gradient outputs (+=); callers zero them.
#pragma once
#include <cstdint>

namespace nrt {

// ---- matmul.cc: out(N,OUT) = inp(N,IN) @ weight(OUT,IN)^T
void matmul_forward(float* out, const float* inp, const float* weight, int N, int IN, int OUT, bool accumulate);
// The same for N <= MATMUL_ROWS_MAX rows without BLAS (what matmul_forward runs for so few rows, with AVX2; BLAS
// for more rows or without AVX2): each out[n][o] is one FMA chain over k in order, whatever N and the threads.
// Up to 128 rows (a rollout of 64 or 128 streams) it beats OpenBLAS, which packs the whole weight for every call:
// 1.2-1.7x on a 135M or 1B sampling step at 64-128 rows (bench/kernels.cc).
constexpr int MATMUL_ROWS_MAX = 128;
void matmul_forward_rows(float* out, const float* inp, const float* weight, int N, int IN, int OUT, bool accumulate);
void matmul_forward_naive(float* out, const float* inp, const float* weight, int N, int IN, int OUT, bool accumulate);
// dinp(N,IN) += dout @ weight ; dweight(OUT,IN) += dout^T @ inp   (either output may be null)
void matmul_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight, int N,
                     int IN, int OUT);
void matmul_backward_naive(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                           int N, int IN, int OUT);
// A bias: x(N,D) += b(D) on every row; its backward db(D) += sum over rows of dx(N,D).
void bias_forward(float* x, const float* b, int N, int D);
void bias_backward(float* db, const float* dx, int N, int D);

// ---- lora.cc: LoRA deltas out(N, OUT) += scale * (inp(N,IN) @ A(R,IN)^T) @ B(OUT,R)^T in two halves; row strides
// ldo, ldu, ldt, ldd let outputs and u be column blocks of wider matrices
// down: u(N, RM) = inp @ A^T for RM = m R rows of m targets' A matrices side by side
void lora_down(float* u, int ldu, const float* inp, const float* A, int N, int IN, int RM);
// up: out(N, OUT) += scale * u(N, R) @ B^T
void lora_up(float* out, int ldo, const float* u, int ldu, const float* B, int N, int OUT, int R, float scale);
// dB(OUT,R) ACCUMULATES scale * dout^T @ u; t(N,R) = dout @ B is written
void lora_up_backward(float* dB, float* t, int ldt, const float* dout, int ldd, const float* u, int ldu,
                      const float* B, int N, int OUT, int R, float scale);
// dA(RM,IN) and dinp(N,IN) ACCUMULATE scale * t^T @ inp and scale * t @ A
void lora_down_backward(float* dinp, float* dA, const float* t, int ldt, const float* inp, const float* A, int N,
                        int IN, int RM, float scale);

// ---- rmsnorm.cc: out = inp / rms(inp) * weight, rstd(N) saved for backward; a null dweight is not computed
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C, float eps);
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int N, int C);
// Per-head RMSNorm (Qwen3's q_norm/k_norm), in place on nheads heads of HS columns in each row of x (row stride
// `stride`, x pointing at the first head): xin (N, in_stride) keeps each row's heads before the norm and rstd
// (N, rstd_stride) each head's 1/rms, for backward; one weight (HS) for all heads.
void rmsnorm_heads_forward(float* x, int stride, float* xin, int in_stride, float* rstd, int rstd_stride,
                           const float* weight, int N, int nheads, int HS, float eps);
// In place: dx holds dL/d(normed heads) on entry and dL/d(heads before the norm) on return; dweight (HS) ACCUMULATES.
void rmsnorm_heads_backward(float* dx, int stride, float* dweight, const float* xin, int in_stride, const float* rstd,
                            int rstd_stride, const float* weight, int N, int nheads, int HS);

// ---- rope.cc: half-split rotary embedding (Hugging Face rotate_half), in place on nheads heads of each row
// x(N, stride) holds heads at columns [col0, col0 + nheads*HS); pos(N) is each token's position.
void rope_forward(float* x, const int32_t* pos, int N, int stride, int col0, int nheads, int HS, float theta);
// The rotation is orthogonal, so backward rotates the gradient by -angle (in place).
void rope_backward(float* dx, const int32_t* pos, int N, int stride, int col0, int nheads, int HS, float theta);
// The same with each row's angles precomputed: cos, sin (N, HS/2) from rope_angles (bitwise the same results).
void rope_angles(float* cos, float* sin, const int32_t* pos, int N, int HS, float theta);
// The same from given inverse frequencies inv_freq (HS/2): angle = pos * inv_freq[d].
void rope_angles_freq(float* cos, float* sin, const int32_t* pos, int N, int HS, const float* inv_freq);
// inv_freq[d] = theta^(-2d/HS), d < HS/2, in float32 as transformers computes it.
void rope_inv_freq(float* inv_freq, int HS, float theta);
// Scalings of inv_freq (HS/2) in place, in float32 as transformers' modeling_rope_utils: linear divides by factor;
// llama3 (_compute_llama3_parameters) with wavelength w = 2 pi / f: f / factor where w > orig_max / low_freq, f where
// w < orig_max / high_freq, and between them (1 - s) f / factor + s f with s = (orig_max / w - low_freq) /
// (high_freq - low_freq).
void rope_scale_linear(float* inv_freq, int HS, float factor);
void rope_scale_llama3(float* inv_freq, int HS, float factor, float low_freq, float high_freq, float orig_max);
void rope_forward_table(float* x, const float* cos, const float* sin, int N, int stride, int col0, int nheads, int HS);
void rope_backward_table(float* dx, const float* cos, const float* sin, int N, int stride, int col0, int nheads,
                         int HS);

// ---- attention.cc: causal (optionally sliding-window) grouped-query attention over packed sequences
// qkv(N,QKV) rows are [q | k | v]; seq_start(S+1) are token offsets; att holds the softmax probabilities,
// per sequence s an (NH, T_s, T_s) block at att_off[s]. window <= 0 means full causal attention.
void attention_forward(float* out, float* att, const float* qkv, const int32_t* seq_start, const int64_t* att_off,
                       int S, int NH, int NKV, int HS, int window);
void attention_backward(float* dqkv, const float* dout, const float* att, const float* qkv, const int32_t* seq_start,
                        const int64_t* att_off, int S, int NH, int NKV, int HS, int window);
// The same, but writing dqkv (=) instead of accumulating: saves zeroing it first.
void attention_backward_set(float* dqkv, const float* dout, const float* att, const float* qkv,
                            const int32_t* seq_start, const int64_t* att_off, int S, int NH, int NKV, int HS,
                            int window);
// The direct (i, j, e) loops: the oracle for the vectorised path above, and the path when HS % 8 != 0.
void attention_forward_naive(float* out, float* att, const float* qkv, const int32_t* seq_start,
                             const int64_t* att_off, int S, int NH, int NKV, int HS, int window);
void attention_backward_naive(float* dqkv, const float* dout, const float* att, const float* qkv,
                              const int32_t* seq_start, const int64_t* att_off, int S, int NH, int NKV, int HS,
                              int window);

// Attention over a KV cache (sampling): n query rows, token i of stream[i] at position pos[i] < T, its q the first
// Q columns of qkv(n, QKV); K, V (B, S, KV) hold each stream's keys and values, position j in slot j % S (S = T, or
// with a window a ring of S < T slots whose keys in view the caller keeps from being overwritten); token i attends
// to its positions j with 0 <= pos_i - j < window (all j <= pos_i when window <= 0). out(n, Q).
void attention_forward_cached(float* out, const float* qkv, const float* K, const float* V, const int32_t* stream,
                              const int32_t* pos, int n, int S, int T, int NH, int NKV, int HS, int window);

// ---- swiglu.cc: out(N,F) = silu(gu[:, :F]) * gu[:, F:], gu(N,2F)
void swiglu_forward(float* out, const float* gu, int N, int F);
void swiglu_backward(float* dgu, const float* dout, const float* gu, int N, int F);
// The same, but writing dgu (=) instead of accumulating: saves zeroing it first.
void swiglu_backward_set(float* dgu, const float* dout, const float* gu, int N, int F);

// ---- embedding.cc: out(N,C) = table[tokens]
void embedding_forward(float* out, const int32_t* tokens, const float* table, int N, int C);
void embedding_backward(float* dtable, const float* dout, const int32_t* tokens, int N, int C);

// ---- xent.cc: per-row log-sum-exp, target log-probability and entropy of softmax(logits)
// logits(N,V); target(N) with -1 meaning "no target at this row"; lse, logp, ent (N)
void xent_forward(float* lse, float* logp, float* ent, const float* logits, const int32_t* target, int N, int V);
// dlogits(N,V) = w(N) * (softmax(logits) - onehot(target)), written (not accumulated) in place over logits
void xent_backward_inplace(float* logits, const float* lse, const int32_t* target, const float* w, int N, int V);

}  // namespace nrt
