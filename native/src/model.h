// The Llama-family model (Llama, Mistral, Qwen2, Qwen3) over one flat parameter buffer: its architecture, the
// parameter table and its named views, the training forward and backward passes (model.cc), KV-cached inference
// (sampler.cc) and AdamW (optim.cc).
// The forward, backward and cached passes all run one layer recipe (layer.h).
// Sizes follow kernels.h: N tokens, C hidden, V vocab, F intermediate, NH/NKV heads, HS head size, L layers.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace nrt {

// RoPE frequency scaling as transformers' modeling_rope_utils computes it from config.json's rope_scaling:
// linear divides every inverse frequency by factor (positions / factor); llama3 (_compute_llama3_parameters) divides
// the low frequencies (wavelength > orig_max / low_freq) by factor, keeps the high ones (wavelength < orig_max /
// high_freq), and blends the ones between.
struct RopeScaling {
  enum Type { none, linear, llama3 } type = none;
  float factor = 1.0f, low_freq = 1.0f, high_freq = 4.0f;
  float orig_max = 8192.0f;  // original_max_position_embeddings
};

// The LoRA projections (PEFT's target_modules names), in layer order. Projections that read the same input form a
// group ({q, k, v} read h1, {o} y, {gate, up} h2, {down} a): lora_table lays the A matrices of a group's targets
// side by side, so that one product gives all their A x.
enum LoraTarget { q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, n_lora_targets };
extern const char* const lora_target_names[n_lora_targets];
// the groups as [first, last) target ranges
constexpr int lora_groups[4][2] = {{q_proj, o_proj}, {o_proj, gate_proj}, {gate_proj, down_proj}, {down_proj, n_lora_targets}};

// A LoRA adapter (PEFT's LoraLayer, lora_dropout 0, bias none): each targeted projection computes
//   y = W x + scale * B (A x),   A (R, in), B (out, R), scale = lora_alpha / R
// with A and B in a second flat buffer laid out by lora_table; W and every other base tensor are frozen (no
// gradients). rank 0: no adapter.
struct Lora {
  int rank = 0;
  float scale = 0.0f;
  unsigned targets = 0;  // bit (1 << t) per LoraTarget
  bool on(int t) const { return rank > 0 && (targets >> t & 1u); }
  // targets adapted, and target t's column block in a layer's (N, count() R) buffers of A x: the targeted ones in
  // layer order, so a group's blocks are adjacent as its A matrices are
  int count() const { return rank > 0 ? __builtin_popcount(targets) : 0; }
  int slot(int t) const { return __builtin_popcount(targets & ((1u << t) - 1u)); }
};

// A model's architecture: its sizes and the options that tell one family from another, in one struct filled from
// config.json (src/io/hf-config.ts -> ModelConfig -> addon.cc:to_config). A new option is a field here, the tensors
// it adds in param_table, and the step it adds to the layer recipe (layer.h), which every path runs.
struct Config {
  int V = 0, C = 0, L = 0, NH = 0, NKV = 0, HS = 0, F = 0;
  float eps = 1e-5f;       // RMSNorm epsilon
  float theta = 10000.0f;  // RoPE base
  int window = 0;          // sliding window W (Mistral): query i sees keys j with 0 <= i - j < W; 0: full causal
  int window_from = 0;     // first layer with the window (Qwen2's max_window_layers); those before attend fully
  bool tied = false;       // lm_head is embed_tokens (no lm_head.weight in the table)
  bool qkv_bias = false;   // self_attn.{q,k,v}_proj.bias (Qwen2), added after the projection
  bool qk_norm = false;    // self_attn.{q,k}_norm.weight (HS) (Qwen3): RMSNorm of each q and k head, before RoPE
  RopeScaling rope;        // RoPE frequency scaling (Llama 3.x, linear)
  Lora lora;               // an adapter over the frozen base, or none
  int Q() const { return NH * HS; }
  int KV() const { return NKV * HS; }
  int QKV() const { return Q() + 2 * KV(); }
  int window_at(int layer) const { return layer >= window_from ? window : 0; }
  // the (in, out) sizes of LoraTarget k's projection
  int lora_in(int k) const { return k == o_proj ? Q() : k == down_proj ? F : C; }
  int lora_out(int k) const {
    return k == q_proj ? Q() : k == k_proj || k == v_proj ? KV() : k == gate_proj || k == up_proj ? F : C;
  }
};

// One row of the parameter table: the Hugging Face name, its shape, where it lives in the flat buffer, and whether
// AdamW decays it (matrices yes, norm weights no). The table is the single source of the layout; TypeScript reads it,
// and the native code finds its tensors in it by name (weights() below).
struct ParamInfo {
  std::string name;
  std::vector<int64_t> shape;
  int64_t offset = 0, size = 0;
  bool decay = true;
};
std::vector<ParamInfo> param_table(const Config& c);
int64_t param_count(const Config& c);
// The adapter's table (empty without one): per layer and target, PEFT's names as saved in adapter_model.safetensors,
//   base_model.model.model.layers.{l}.self_attn.q_proj.lora_A.weight (R, in), ….lora_B.weight (out, R)
std::vector<ParamInfo> lora_table(const Config& c);
int64_t lora_count(const Config& c);
// base (param_table) += scale * B A on each targeted projection: the adapter folded into the model.
void lora_merge(const Config& c, float* base, const float* lora);
// What training updates: the adapter's table with one, else the whole model's.
std::vector<ParamInfo> trainable_table(const Config& c);

// The two buffers a pass reads (T = const float) or whose gradients it accumulates (T = float): the base laid out
// by param_table, and the adapter laid out by lora_table (null without one). A null base in gradients means frozen.
template <class T>
struct Buffers {
  T* base;
  T* lora;
};
using Params = Buffers<const float>;
using Grads = Buffers<float>;

// Views of one layer's tensors in a flat buffer laid out by param_table: the parameters (T = const float) or the
// gradients (T = float). q, k, v are adjacent rows of the table, so [Wq; Wk; Wv] is one (QKV, C) matrix; likewise
// [Wgate; Wup] is one (2F, C) matrix; weights() checks the adjacency rather than assuming it.
template <class T>
struct LayerWeights {
  T* in_norm;    // (C)       input_layernorm
  T* wqkv;       // (QKV, C)  self_attn.{q,k,v}_proj
  T* bqkv;       // (QKV)     self_attn.{q,k,v}_proj.bias, or null (qkv_bias)
  T* q_norm;     // (HS)      self_attn.q_norm, or null (qk_norm)
  T* k_norm;     // (HS)      self_attn.k_norm, or null (qk_norm)
  T* wo;         // (C, Q)    self_attn.o_proj
  T* post_norm;  // (C)       post_attention_layernorm
  T* wgu;        // (2F, C)   mlp.{gate,up}_proj
  T* wdown;      // (C, F)    mlp.down_proj
  // the adapter's A (R, in) and B (out, R) of each LoraTarget, null where it is not targeted
  T* lora_a[n_lora_targets];
  T* lora_b[n_lora_targets];
};
template <class T>
struct Weights {
  T* embed;  // (V, C)
  std::vector<LayerWeights<T>> layers;
  T* final_norm;  // (C)
  T* lm_head;     // (V, C), embed when tied
};
// The views of `b` (parameters or gradients), each tensor looked up by its name in param_table and lora_table; a
// null buffer gives null views.
Weights<const float> weights(const Config& c, Params b);
Weights<float> weights(const Config& c, Grads b);

// Everything the backward pass needs from one forward pass over a packed batch.
struct Activations {
  int N = 0, S = 0;
  std::vector<int32_t> tokens, seq_start, pos, target;  // target[n] = tokens[n+1] in the same sequence, else -1
  std::vector<int64_t> att_off;                         // (S+1)
  std::vector<float> x;      // (L+1, N, C) residual stream entering each layer; x[L] enters the final norm
  std::vector<float> h1;     // (L, N, C)   input_layernorm output
  std::vector<float> rstd1;  // (L, N)
  std::vector<float> qkv;    // (L, N, QKV) after RoPE
  std::vector<float> qk_in, qk_rstd;  // qk_norm only: (L, N, Q+KV) q and k before their norm; (L, N, NH+NKV)
  std::vector<float> att;    // (L, att_off[S]) softmax probabilities
  std::vector<float> y;      // (L, N, Q)   attention output before o_proj
  std::vector<float> xm;     // (L, N, C)   residual after attention
  std::vector<float> h2;     // (L, N, C)   post_attention_layernorm output
  std::vector<float> rstd2;  // (L, N)
  std::vector<float> gu;     // (L, N, 2F)  gate and up projections
  std::vector<float> a;      // (L, N, F)   silu(gate) * up
  std::vector<float> lora_u; // LoRA only: (L, N, count R) the targets' A x, target t at columns slot(t) R
  std::vector<float> hf;     // (N, C)      final norm output
  std::vector<float> rstdf;  // (N)
  std::vector<float> logits; // (N, V)      overwritten by dlogits in backward
  std::vector<float> lse, logp, ent;  // (N) per row: log-sum-exp, log p(target), entropy
  std::vector<float> rope_cos, rope_sin;  // (N, HS/2) rotary angles of each row's position, shared by all layers
  // backward's scratch gradients, kept between calls: (N,C) dh, dres; (N,F) da; (N,2F) dgu; (N,Q) dy; (N,QKV) dqkv;
  // (N, count R) lora_t
  std::vector<float> dh, dres, da, dgu, dy, dqkv, lora_t;
  bool has_logits_grad = false;
};

// Forward over S packed sequences (seq_lens sums to N). Fills acts; per-row logp/ent predict the next token.
void model_forward(Activations& acts, const Config& c, Params params, const int32_t* tokens, const int32_t* seq_lens,
                   int S);
// Backward with a weight per target row: loss = sum_n w[n] * (-logp[n]). Accumulates into grads (with an adapter,
// into grads.lora alone: the base is frozen); returns loss.
double model_backward(Activations& acts, const Config& c, Params params, Grads grads, const float* row_w);

// ---- KV-cache inference (sampler.cc)
struct KVCache {
  int B = 0, T = 0;       // streams, positions per stream
  // slots per stream: T, or with a sliding window W < T/2 a ring of 2W slots (position p in slot p % S), so that
  // sampling past the window holds O(W) keys and values, not O(T)
  int S = 0;
  std::vector<float> k, v;  // (L, B, S, KV)
  // model_forward_cached's activations for n tokens, kept between calls so that a sampling step allocates nothing
  std::vector<float> x, h, rstd, qkv, qk_in, qk_rstd, y, gu, a, lora_u, rope_cos, rope_sin, xo, ho, ro;
};
void kvcache_init(KVCache& kv, const Config& c, int B, int T);
// Runs n tokens (token, stream, position) through the model, writing their keys/values into the cache; each token
// attends to its stream's cached positions <= its own (within the window). Writes logits (n_out, V) for the rows
// listed in out_rows.
void model_forward_cached(float* logits, KVCache& kv, const Config& c, Params params, const int32_t* tokens,
                          const int32_t* stream, const int32_t* pos, int n, const int32_t* out_rows, int n_out);

struct SampleOptions {
  int max_new = 64;
  float temperature = 1.0f;  // 0: greedy
  int top_k = 0;             // 0: off
  float top_p = 1.0f;        // 1: off
  uint64_t seed = 0;
  std::vector<uint64_t> seeds;  // if not empty, one per stream: stream b draws from its own seeds[b] alone
  std::vector<int32_t> stop;  // generation of a stream ends after it emits one of these
  int vocab_limit = 0;        // > 0: only ids < vocab_limit are candidates (a vocabulary padded past the tokenizer)
};
struct SampleResult {
  std::vector<int32_t> tokens;  // (B, max_new), -1 past each stream's end
  std::vector<float> logp;      // (B, max_new) log-probability under the model (temperature 1)
  std::vector<float> ent;       // (B, max_new) entropy (nats) of the model's distribution at that step
  std::vector<int32_t> len;     // (B) tokens generated, the stop token included
  std::vector<uint8_t> stopped; // (B) 1 if the stream ended on a stop token
};
SampleResult generate(const Config& c, Params params, const int32_t* prompts, const int32_t* prompt_lens, int B,
                      const SampleOptions& opt);

// ---- optim.cc
struct AdamW {
  float lr, beta1, beta2, eps, weight_decay, clip;  // clip <= 0: no clipping
  int64_t step;                                      // 1-based step for bias correction
};
double grad_norm(const float* grads, int64_t n);
// Clips the gradient to global norm `clip` and applies one AdamW step to the buffer trainable_table(c) lays out
// (the adapter's with one, else the model's); returns the norm before clipping.
double adamw_step(const Config& c, float* params, const float* grads, float* m, float* v, const AdamW& h);

}  // namespace nrt
