// The only N-API code: argument checks, TypedArray -> pointer, C++ exceptions -> JS errors.
// Kernels and the model know nothing of Node; the kernels also build into plain C++ (bench/kernels.cc).
#include <cblas.h>
#include <napi.h>
#include <omp.h>

#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "model.h"

extern "C" void openblas_set_num_threads(int);

namespace {

using nrt::Config;

[[noreturn]] void fail(Napi::Env env, const std::string& msg) { throw Napi::Error::New(env, "nrt native: " + msg); }

int get_int(const Napi::Object& o, const char* key, int def, bool required) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) {
    if (required) fail(o.Env(), std::string("config.") + key + " is required");
    return def;
  }
  if (!v.IsNumber()) fail(o.Env(), std::string("config.") + key + " must be a number");
  return v.As<Napi::Number>().Int32Value();
}

double get_num(const Napi::Object& o, const char* key, double def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsNumber()) fail(o.Env(), std::string(key) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

Config to_config(const Napi::Value& val) {
  Napi::Env env = val.Env();
  if (!val.IsObject()) fail(env, "config must be an object");
  Napi::Object o = val.As<Napi::Object>();
  Config c;
  c.V = get_int(o, "vocabSize", 0, true);
  c.C = get_int(o, "hiddenSize", 0, true);
  c.L = get_int(o, "numLayers", 0, true);
  c.NH = get_int(o, "numHeads", 0, true);
  c.NKV = get_int(o, "numKvHeads", c.NH, false);
  c.HS = get_int(o, "headDim", c.NH > 0 ? c.C / c.NH : 0, false);
  c.F = get_int(o, "intermediateSize", 0, true);
  c.eps = (float)get_num(o, "rmsNormEps", 1e-5);
  c.theta = (float)get_num(o, "ropeTheta", 10000.0);
  c.window = get_int(o, "slidingWindow", 0, false);
  c.window_from = get_int(o, "maxWindowLayers", 0, false);
  auto flag = [&](const char* key) {
    Napi::Value v = o.Get(key);
    return v.IsBoolean() && v.As<Napi::Boolean>().Value();
  };
  c.tied = flag("tied");
  c.qkv_bias = flag("qkvBias");
  c.qk_norm = flag("qkNorm");
  Napi::Value rs = o.Get("ropeScaling");
  if (rs.IsObject()) {
    Napi::Object r = rs.As<Napi::Object>();
    Napi::Value type = r.Get("type");
    const std::string ty = type.IsString() ? type.As<Napi::String>().Utf8Value() : "";
    if (ty == "linear") c.rope.type = nrt::RopeScaling::linear;
    else if (ty == "llama3") c.rope.type = nrt::RopeScaling::llama3;
    else fail(env, "ropeScaling.type must be \"linear\" or \"llama3\"");
    c.rope.factor = (float)get_num(r, "factor", 1.0);
    c.rope.low_freq = (float)get_num(r, "lowFreqFactor", 1.0);
    c.rope.high_freq = (float)get_num(r, "highFreqFactor", 4.0);
    c.rope.orig_max = (float)get_num(r, "originalMaxPositionEmbeddings", 8192.0);
    if (!(c.rope.factor > 0) || !(c.rope.high_freq > c.rope.low_freq) || !(c.rope.orig_max > 0))
      fail(env, "ropeScaling needs factor > 0, highFreqFactor > lowFreqFactor and originalMaxPositionEmbeddings > 0");
  } else if (!rs.IsUndefined() && !rs.IsNull()) {
    fail(env, "ropeScaling must be an object or null");
  }
  Napi::Value lo = o.Get("lora");
  if (lo.IsObject()) {
    Napi::Object r = lo.As<Napi::Object>();
    c.lora.rank = get_int(r, "rank", 0, true);
    const double alpha = get_num(r, "alpha", 2.0 * c.lora.rank);
    if (c.lora.rank < 1) fail(env, "lora.rank must be >= 1");
    if (!(alpha > 0)) fail(env, "lora.alpha must be > 0");
    c.lora.scale = (float)(alpha / c.lora.rank);
    Napi::Value ts = r.Get("targets");
    if (!ts.IsArray() || ts.As<Napi::Array>().Length() == 0) fail(env, "lora.targets must be a non-empty array");
    auto a = ts.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      const std::string name = a.Get(i).IsString() ? a.Get(i).As<Napi::String>().Utf8Value() : "";
      int k = 0;
      while (k < nrt::n_lora_targets && name != nrt::lora_target_names[k]) k++;
      if (k == nrt::n_lora_targets) fail(env, "lora.targets: unknown projection \"" + name + "\"");
      c.lora.targets |= 1u << k;
    }
  } else if (!lo.IsUndefined() && !lo.IsNull()) {
    fail(env, "lora must be an object or null");
  }
  if (c.V <= 0 || c.C <= 0 || c.L <= 0 || c.NH <= 0 || c.NKV <= 0 || c.HS <= 0 || c.F <= 0)
    fail(env, "config sizes must be positive");
  if (c.NH % c.NKV != 0) fail(env, "numHeads must be a multiple of numKvHeads");
  if (c.HS % 2 != 0) fail(env, "headDim must be even for rotary embeddings");
  if (c.window < 0) fail(env, "slidingWindow must be >= 0");
  if (c.window_from < 0) fail(env, "maxWindowLayers must be >= 0");
  return c;
}

template <typename T>
T* typed(const Napi::Value& v, napi_typedarray_type type, size_t expect, const char* what) {
  Napi::Env env = v.Env();
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    fail(env, std::string(what) + " has the wrong array type");
  auto a = v.As<Napi::TypedArray>();
  if (expect != (size_t)-1 && a.ElementLength() != expect)
    fail(env, std::string(what) + " has length " + std::to_string(a.ElementLength()) + ", expected " +
                  std::to_string(expect));
  return reinterpret_cast<T*>(static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset());
}
size_t length_of(const Napi::Value& v) { return v.As<Napi::TypedArray>().ElementLength(); }

Napi::Float32Array f32(Napi::Env env, const float* p, size_t n) {
  auto a = Napi::Float32Array::New(env, n);
  std::copy(p, p + n, a.Data());
  return a;
}
Napi::Int32Array i32(Napi::Env env, const int32_t* p, size_t n) {
  auto a = Napi::Int32Array::New(env, n);
  std::copy(p, p + n, a.Data());
  return a;
}

void check_tokens(Napi::Env env, const int32_t* t, size_t n, int V) {
  for (size_t i = 0; i < n; i++)
    if (t[i] < 0 || t[i] >= V)
      fail(env, "token id " + std::to_string(t[i]) + " at index " + std::to_string(i) + " is outside the vocabulary (" +
                    std::to_string(V) + ")");
}

// Sequence lengths: each >= 1, summing to the number of tokens.
int check_lens(Napi::Env env, const int32_t* lens, size_t S, size_t N) {
  size_t sum = 0;
  for (size_t s = 0; s < S; s++) {
    if (lens[s] < 1) fail(env, "sequence " + std::to_string(s) + " is empty");
    sum += lens[s];
  }
  if (sum != N) fail(env, "sequence lengths sum to " + std::to_string(sum) + ", but there are " + std::to_string(N) + " tokens");
  return (int)S;
}

Napi::Value table_js(Napi::Env env, const std::vector<nrt::ParamInfo>& t) {
  auto arr = Napi::Array::New(env, t.size());
  for (size_t i = 0; i < t.size(); i++) {
    auto o = Napi::Object::New(env);
    o.Set("name", t[i].name);
    auto shape = Napi::Array::New(env, t[i].shape.size());
    for (size_t d = 0; d < t[i].shape.size(); d++) shape.Set(d, (double)t[i].shape[d]);
    o.Set("shape", shape);
    o.Set("offset", (double)t[i].offset);
    o.Set("size", (double)t[i].size);
    o.Set("decay", t[i].decay);
    arr.Set(i, o);
  }
  return arr;
}

Napi::Value param_table_js(const Napi::CallbackInfo& info) {
  return table_js(info.Env(), nrt::param_table(to_config(info[0])));
}

// loraTable(config) -> the adapter's table (config.lora), empty without one
Napi::Value lora_table_js(const Napi::CallbackInfo& info) {
  return table_js(info.Env(), nrt::lora_table(to_config(info[0])));
}

Napi::Value set_threads(const Napi::CallbackInfo& info) {
  int n = info[0].As<Napi::Number>().Int32Value();
  if (n < 1) fail(info.Env(), "threads must be >= 1");
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
  return info.Env().Undefined();
}

Napi::Value get_threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), omp_get_max_threads()); }

Napi::Value grad_norm_js(const Napi::CallbackInfo& info) {
  const float* g = typed<float>(info[0], napi_float32_array, (size_t)-1, "grads");
  return Napi::Number::New(info.Env(), nrt::grad_norm(g, (int64_t)length_of(info[0])));
}

// loraMerge(config, params, adapter): params += scale * B A on each projection config.lora targets, in place
Napi::Value lora_merge_js(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Config c = to_config(info[0]);
  if (c.lora.rank <= 0) fail(env, "loraMerge needs config.lora");
  float* p = typed<float>(info[1], napi_float32_array, (size_t)nrt::param_count(c), "params");
  const float* a = typed<float>(info[2], napi_float32_array, (size_t)nrt::lora_count(c), "adapter");
  nrt::lora_merge(c, p, a);
  return env.Undefined();
}

// adamw(config, params, grads, m, v, {lr, beta1, beta2, eps, weightDecay, clip, step}) -> grad norm before clipping;
// params is what is trained: the model's buffer, or with config.lora the adapter's
Napi::Value adamw_js(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Config c = to_config(info[0]);
  size_t n = (size_t)(c.lora.rank > 0 ? nrt::lora_count(c) : nrt::param_count(c));
  float* p = typed<float>(info[1], napi_float32_array, n, "params");
  const float* g = typed<float>(info[2], napi_float32_array, n, "grads");
  float* m = typed<float>(info[3], napi_float32_array, n, "m");
  float* v = typed<float>(info[4], napi_float32_array, n, "v");
  if (!info[5].IsObject()) fail(env, "adamw options must be an object");
  auto o = info[5].As<Napi::Object>();
  nrt::AdamW h{(float)get_num(o, "lr", 1e-3),        (float)get_num(o, "beta1", 0.9),
               (float)get_num(o, "beta2", 0.95),     (float)get_num(o, "eps", 1e-8),
               (float)get_num(o, "weightDecay", 0.0), (float)get_num(o, "clip", 0.0),
               (int64_t)get_num(o, "step", 1)};
  if (h.step < 1) fail(env, "adamw step must be >= 1");
  return Napi::Number::New(env, nrt::adamw_step(c, p, g, m, v, h));
}

// benchSgemm(n, reps) -> Float64Array(reps): GFLOP/s of each of `reps` calls of nrt's sgemm path (matmul_forward,
// out = a @ b^T, n x n x n) after one warm-up call, at the current thread setting. For `npm run bench`.
Napi::Value bench_sgemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int n = info[0].As<Napi::Number>().Int32Value(), reps = info[1].As<Napi::Number>().Int32Value();
  if (n < 1 || n > 8192 || reps < 1) fail(env, "benchSgemm needs 1 <= n <= 8192 and reps >= 1");
  std::vector<float> a((size_t)n * n), b((size_t)n * n), c((size_t)n * n);
  for (size_t i = 0; i < a.size(); i++) {
    a[i] = (float)((i * 7919) % 1000) * 1e-3f;
    b[i] = (float)((i * 104729) % 1000) * 1e-3f;
  }
  nrt::matmul_forward(c.data(), a.data(), b.data(), n, n, n, false);
  auto out = Napi::Float64Array::New(env, reps);
  for (int r = 0; r < reps; r++) {
    auto t0 = std::chrono::steady_clock::now();
    nrt::matmul_forward(c.data(), a.data(), b.data(), n, n, n, false);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out[r] = 2.0 * n * n * (double)n / s / 1e9;
  }
  return out;
}

class Engine : public Napi::ObjectWrap<Engine> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Engine",
                       {InstanceMethod("forward", &Engine::Forward), InstanceMethod("backward", &Engine::Backward),
                        InstanceMethod("logits", &Engine::Logits), InstanceMethod("generate", &Engine::Generate),
                        InstanceMethod("cachedLogits", &Engine::CachedLogits)});
  }

  // new Engine(config, params: Float32Array, adapter?: Float32Array) — the adapter (laid out by loraTable) when
  // config.lora is set; both are read at each call, never copied
  Engine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Engine>(info) {
    cfg_ = to_config(info[0]);
    n_ = (size_t)nrt::param_count(cfg_);
    n_lora_ = (size_t)nrt::lora_count(cfg_);
    typed<float>(info[1], napi_float32_array, n_, "params");
    params_ = Napi::Persistent(info[1].As<Napi::Object>());
    if (n_lora_ > 0) {
      typed<float>(info[2], napi_float32_array, n_lora_, "adapter");
      adapter_ = Napi::Persistent(info[2].As<Napi::Object>());
    }
  }

 private:
  nrt::Params params(Napi::Env env) {
    return {typed<float>(params_.Value(), napi_float32_array, n_, "params"),
            n_lora_ > 0 ? typed<float>(adapter_.Value(), napi_float32_array, n_lora_, "adapter") : nullptr};
  }

  template <typename F>
  Napi::Value guard(Napi::Env env, F f) {
    try {
      return f();
    } catch (const Napi::Error&) {
      throw;
    } catch (const std::exception& e) {
      fail(env, e.what());
    }
  }

  // forward(tokens: Int32Array, seqLens: Int32Array) -> {logprobs, entropy}, aligned with tokens:
  // logprobs[t] = log p(tokens[t] | earlier tokens of its sequence), entropy[t] = entropy of that distribution;
  // both 0 at the first token of each sequence. Keeps the activations for one backward().
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      const int32_t* tok = typed<int32_t>(info[0], napi_int32_array, (size_t)-1, "tokens");
      const size_t N = length_of(info[0]);
      const int32_t* lens = typed<int32_t>(info[1], napi_int32_array, (size_t)-1, "seqLens");
      const int S = check_lens(env, lens, length_of(info[1]), N);
      check_tokens(env, tok, N, cfg_.V);
      nrt::model_forward(acts_, cfg_, params(env), tok, lens, S);
      auto lp = Napi::Float32Array::New(env, N), en = Napi::Float32Array::New(env, N);
      for (int s = 0; s < S; s++) {
        const int a = acts_.seq_start[s], b = acts_.seq_start[s + 1];
        lp[a] = 0.0f, en[a] = 0.0f;
        for (int t = a + 1; t < b; t++) lp[t] = acts_.logp[t - 1], en[t] = acts_.ent[t - 1];
      }
      auto out = Napi::Object::New(env);
      out.Set("logprobs", lp);
      out.Set("entropy", en);
      return out;
    });
  }

  // backward(weights: Float32Array aligned with tokens, grads: Float32Array) -> loss = sum_t w_t * (-logprobs[t]);
  // the weight at each sequence's first token is ignored. ACCUMULATES into grads: the parameters' layout, or with
  // an adapter the adapter's (the base is frozen).
  Napi::Value Backward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      if (acts_.N == 0) fail(env, "backward() needs a forward() first");
      if (acts_.has_logits_grad) fail(env, "backward() was already called for this forward()");
      const float* w = typed<float>(info[0], napi_float32_array, (size_t)acts_.N, "weights");
      float* g = typed<float>(info[1], napi_float32_array, n_lora_ > 0 ? n_lora_ : n_, "grads");
      const nrt::Grads grads{n_lora_ > 0 ? nullptr : g, n_lora_ > 0 ? g : nullptr};
      std::vector<float> roww(acts_.N, 0.0f);
      for (int n = 0; n + 1 < acts_.N; n++)
        if (acts_.target[n] >= 0) roww[n] = w[n + 1];
      return Napi::Number::New(env, nrt::model_backward(acts_, cfg_, params(env), grads, roww.data()));
    });
  }

  // logits() -> Float32Array (N*V) of the last forward(), before backward() overwrites them
  Napi::Value Logits(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (acts_.N == 0 || acts_.has_logits_grad) fail(env, "logits() needs a forward() not yet followed by backward()");
    return f32(env, acts_.logits.data(), acts_.logits.size());
  }

  // generate(prompts: Int32Array, promptLens: Int32Array, {maxNew, temperature, topK, topP, seed, seeds?: number[],
  //   stop: number[], vocabLimit?: number})
  //   -> {tokens: Int32Array(B*maxNew), logprobs, entropy: Float32Array(B*maxNew), lengths: Int32Array(B),
  //       stopped: Uint8Array(B)}
  Napi::Value Generate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      const int32_t* pr = typed<int32_t>(info[0], napi_int32_array, (size_t)-1, "prompts");
      const int32_t* lens = typed<int32_t>(info[1], napi_int32_array, (size_t)-1, "promptLens");
      const int B = check_lens(env, lens, length_of(info[1]), length_of(info[0]));
      check_tokens(env, pr, length_of(info[0]), cfg_.V);
      if (!info[2].IsObject()) fail(env, "generate options must be an object");
      auto o = info[2].As<Napi::Object>();
      nrt::SampleOptions opt;
      opt.max_new = get_int(o, "maxNew", 64, false);
      opt.temperature = (float)get_num(o, "temperature", 1.0);
      opt.top_k = get_int(o, "topK", 0, false);
      opt.top_p = (float)get_num(o, "topP", 1.0);
      opt.seed = (uint64_t)get_num(o, "seed", 0);
      opt.vocab_limit = get_int(o, "vocabLimit", 0, false);
      if (opt.vocab_limit < 0 || opt.vocab_limit > cfg_.V) fail(env, "vocabLimit must be in [0, vocab_size]");
      if (opt.max_new < 0) fail(env, "maxNew must be >= 0");
      if (opt.temperature < 0) fail(env, "temperature must be >= 0");
      if (!(opt.top_p > 0 && opt.top_p <= 1)) fail(env, "topP must be in (0, 1]");
      Napi::Value sd = o.Get("seeds");
      if (!sd.IsUndefined()) {
        if (!sd.IsArray() || sd.As<Napi::Array>().Length() != (uint32_t)B)
          fail(env, "seeds must be an array with one seed per stream");
        auto a = sd.As<Napi::Array>();
        for (uint32_t i = 0; i < a.Length(); i++) {
          const double x = a.Get(i).IsNumber() ? a.Get(i).As<Napi::Number>().DoubleValue() : -1;
          if (!(x >= 0 && x <= 9007199254740991.0 && x == std::floor(x)))
            fail(env, "seeds must be integers in [0, 2^53)");
          opt.seeds.push_back((uint64_t)x);
        }
      }
      Napi::Value st = o.Get("stop");
      if (st.IsArray()) {
        auto a = st.As<Napi::Array>();
        for (uint32_t i = 0; i < a.Length(); i++) opt.stop.push_back(a.Get(i).As<Napi::Number>().Int32Value());
      }
      auto R = nrt::generate(cfg_, params(env), pr, lens, B, opt);
      auto out = Napi::Object::New(env);
      out.Set("tokens", i32(env, R.tokens.data(), R.tokens.size()));
      out.Set("logprobs", f32(env, R.logp.data(), R.logp.size()));
      out.Set("entropy", f32(env, R.ent.data(), R.ent.size()));
      out.Set("lengths", i32(env, R.len.data(), R.len.size()));
      auto stopped = Napi::Uint8Array::New(env, B);
      std::copy(R.stopped.begin(), R.stopped.end(), stopped.Data());
      out.Set("stopped", stopped);
      return out;
    });
  }

  // cachedLogits(tokens: Int32Array, prefix: number) -> Float32Array(N*V): the first `prefix` tokens go through the
  // KV-cache path at once, the rest one at a time. For testing the cache against forward().
  Napi::Value CachedLogits(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      const int32_t* tok = typed<int32_t>(info[0], napi_int32_array, (size_t)-1, "tokens");
      const int N = (int)length_of(info[0]);
      const int pre = info[1].As<Napi::Number>().Int32Value();
      if (pre < 1 || pre > N) fail(env, "prefix must be in [1, tokens.length]");
      check_tokens(env, tok, N, cfg_.V);
      nrt::KVCache kv;
      nrt::kvcache_init(kv, cfg_, 1, N);
      std::vector<float> out((size_t)N * cfg_.V);
      std::vector<int32_t> str(N, 0), pos(N), rows(N);
      for (int i = 0; i < N; i++) pos[i] = i, rows[i] = i;
      nrt::model_forward_cached(out.data(), kv, cfg_, params(env), tok, str.data(), pos.data(), pre, rows.data(), pre);
      for (int t = pre; t < N; t++)
        nrt::model_forward_cached(out.data() + (size_t)t * cfg_.V, kv, cfg_, params(env), tok + t, str.data(),
                                  pos.data() + t, 1, rows.data(), 1);
      return f32(env, out.data(), out.size());
    });
  }

  Config cfg_;
  size_t n_ = 0, n_lora_ = 0;
  Napi::ObjectReference params_, adapter_;
  nrt::Activations acts_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Engine", Engine::Init(env));
  exports.Set("paramTable", Napi::Function::New(env, param_table_js));
  exports.Set("loraTable", Napi::Function::New(env, lora_table_js));
  exports.Set("loraMerge", Napi::Function::New(env, lora_merge_js));
  exports.Set("setThreads", Napi::Function::New(env, set_threads));
  exports.Set("getThreads", Napi::Function::New(env, get_threads));
  exports.Set("gradNorm", Napi::Function::New(env, grad_norm_js));
  exports.Set("adamw", Napi::Function::New(env, adamw_js));
  exports.Set("benchSgemm", Napi::Function::New(env, bench_sgemm));
  return exports;
}

}  // namespace

NODE_API_MODULE(nrt_native, Init)
