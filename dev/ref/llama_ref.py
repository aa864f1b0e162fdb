#!/usr/bin/python3
"""Independent PyTorch reference for nrt's engine, every family (the gradient oracle, STYLE.md example 5).

Written from the Hugging Face modeling definitions (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM,
Qwen3ForCausalLM) and modeling_rope_utils' semantics, without importing transformers: RMSNorm, half-split
rotate_half RoPE (plain, or with `linear` / `llama3` frequency scaling), grouped-query attention via repeat_kv,
SwiGLU MLP, the sliding window of SPEC §6 (query i attends to keys j with 0 <= i - j < W; W = 0 or null means full
causal; with maxWindowLayers only layers >= it have the window, as Qwen2's layer_types), Qwen2's q/k/v projection
biases, Qwen3's per-head q/k RMSNorm before RoPE, and a tied or untied lm_head. Gradients come from torch.autograd, so nothing here shares code or derivations with the
engine's hand-written backward pass.

Usage
    /usr/bin/python3 dev/ref/llama_ref.py [JOB.json] [--out RESULT.json]
The job is read from JOB.json, or from stdin when no path is given; the result goes to stdout unless --out is given.
A job may also be a JSON list of jobs, answered by a list of results in the same order (one torch import for all).

Job (one JSON object)
    config   ModelConfig fields, nrt's camelCase form (src/model/config.ts): vocabSize, hiddenSize,
             intermediateSize, numLayers, numHeads, numKvHeads, headDim (0/absent: hiddenSize / numHeads),
             rmsNormEps, ropeTheta, tied, slidingWindow (0/null: full causal attention), maxWindowLayers (first
             windowed layer, default 0), ropeScaling (null, {type: "linear", factor} or {type: "llama3", factor,
             lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings}), qkvBias, qkNorm. Other keys are ignored.
    params   base64 of the flat float32 little-endian parameter buffer
    table    [{name, shape, offset, size}] — where each Hugging Face tensor lives in that buffer
    tokens   [int], several sequences laid end to end
    seqLens  [int], lengths of those sequences (sum = len(tokens)); each is run on its own, positions from 0
    weights  [float] aligned with tokens (optional, default all 1); the weight at a sequence's first token is ignored
    dtype    "float32" | "float64" (default "float64"): the compute precision. Parameters are float32 numbers either way.
    lora     optional LoRA adapter: {rank, alpha, params (base64 float32), table [{name, shape, offset, size}]} with
             PEFT's tensor names (base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight (R, in),
             ….lora_B.weight (out, R)). Each projection that has an A and a B computes, as PEFT's lora.Linear.forward
             does with lora_dropout 0: result = base_layer(x) + lora_B(lora_A(x)) * (alpha / rank). The base is then
             frozen: grads holds the adapter's tensors alone.

Result (one JSON object). Every array is base64 of little-endian float64 values (whatever the compute dtype), so
a float64 run loses nothing in transit; shapes are given by the job.
    dtype     the compute dtype
    logits    (N, V): row t is the model output after reading tokens up to t of its sequence (it predicts t + 1)
    logprobs  (N): log p(x_t | x_<t) within its sequence; 0 at each sequence's first token
    entropy   (N): entropy in nats of the distribution that predicted x_t; 0 at each sequence's first token
    loss      float: sum_t w_t * (-logprobs[t]), first tokens excluded
    grads     {hfName: base64 (size of that tensor)}: d loss / d parameter, every tensor in the table (with tied
              embeddings there is no lm_head.weight; its gradient is part of model.embed_tokens.weight's)

RoPE follows transformers exactly: inv_freq = 1 / theta ** (arange(0, HS, 2) / HS), scaled as ropeScaling says,
the angles and their cos/sin computed in float32, then cast to the compute dtype (as LlamaRotaryEmbedding does under
any model dtype).
"""

import base64
import math
import json
import sys

import numpy as np
import torch


def b64_to_f32(s):
    return np.frombuffer(base64.b64decode(s), dtype="<f4")


def f64_to_b64(t):
    return base64.b64encode(np.ascontiguousarray(t.detach().cpu().numpy(), dtype="<f8").tobytes()).decode("ascii")


def rms_norm(x, weight, eps):
    # LlamaRMSNorm: hidden * rsqrt(mean(hidden^2) + eps), then weight * hidden
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def scaled_inv_freq(inv_freq, scaling):
    """The inverse frequencies under rope_scaling, from the definitions (SPEC §6), as float32 tensor ops."""
    if not scaling:
        return inv_freq
    factor = float(scaling["factor"])
    if scaling["type"] == "linear":
        # positions divided by factor, i.e. every frequency divided by it
        return inv_freq / factor
    if scaling["type"] != "llama3":
        raise ValueError(f"unknown rope scaling {scaling['type']}")
    low, high = float(scaling["lowFreqFactor"]), float(scaling["highFreqFactor"])
    orig = float(scaling["originalMaxPositionEmbeddings"])
    wavelen = 2 * math.pi / inv_freq
    # long wavelengths (beyond orig / low): slowed by factor; short ones (below orig / high): kept;
    # between them a linear blend in orig / wavelen from low (all scaled) to high (all kept)
    blend = (orig / wavelen - low) / (high - low)
    mid = (1 - blend) * inv_freq / factor + blend * inv_freq
    out = torch.where(wavelen > orig / low, inv_freq / factor, mid)
    return torch.where(wavelen < orig / high, inv_freq, out)


def rope_cos_sin(T, head_dim, theta, dtype, scaling=None):
    # LlamaRotaryEmbedding (attention_scaling 1 for default, linear and llama3), in float32 like transformers
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    inv_freq = scaled_inv_freq(inv_freq, scaling)
    position_ids = torch.arange(T, dtype=torch.float32)
    freqs = position_ids[:, None] @ inv_freq[None, :]  # (T, HS/2)
    emb = torch.cat((freqs, freqs), dim=-1)  # (T, HS)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def repeat_kv(x, n_rep):
    # (NKV, T, HS) -> (NKV * n_rep, T, HS); query head h reads key/value head h // n_rep
    if n_rep == 1:
        return x
    nkv, T, hs = x.shape
    return x[:, None, :, :].expand(nkv, n_rep, T, hs).reshape(nkv * n_rep, T, hs)


def attention_mask(T, window, dtype):
    # additive mask: 0 where 0 <= i - j (< W when W > 0), the dtype's most negative number elsewhere
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    allowed = (i - j) >= 0
    if window and window > 0:
        allowed = allowed & ((i - j) < window)
    mask = torch.zeros(T, T, dtype=dtype)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask


def linear(P, lora, name, x):
    """x @ W^T for the projection `name` (e.g. model.layers.0.self_attn.q_proj), plus its LoRA delta if it has one."""
    y = x @ P[name + ".weight"].T
    if lora is not None and f"base_model.model.{name}.lora_A.weight" in lora["P"]:
        A = lora["P"][f"base_model.model.{name}.lora_A.weight"]
        B = lora["P"][f"base_model.model.{name}.lora_B.weight"]
        y = y + ((x @ A.T) @ B.T) * lora["scaling"]
    return y


def forward_sequence(P, cfg, tokens, lora=None):
    """Logits (T, V) of one sequence, as LlamaForCausalLM computes them (batch of one, positions 0..T-1)."""
    C, NH, NKV, HS, L = cfg["C"], cfg["NH"], cfg["NKV"], cfg["HS"], cfg["L"]
    T = len(tokens)
    dtype = P["model.embed_tokens.weight"].dtype
    ids = torch.tensor(tokens, dtype=torch.long)
    h = P["model.embed_tokens.weight"][ids]  # (T, C)
    cos, sin = rope_cos_sin(T, HS, cfg["theta"], dtype, cfg["rope_scaling"])
    full_mask = attention_mask(T, 0, dtype)
    window_mask = attention_mask(T, cfg["window"], dtype)
    scaling = HS**-0.5
    for layer in range(L):
        p = f"model.layers.{layer}."
        residual = h
        x = rms_norm(h, P[p + "input_layernorm.weight"], cfg["eps"])
        q, k, v = (linear(P, lora, p + f"self_attn.{n}_proj", x) for n in "qkv")
        if cfg["qkv_bias"]:  # Qwen2: nn.Linear(..., bias=True) on q, k and v
            q, k, v = (t + P[p + f"self_attn.{n}_proj.bias"] for t, n in zip((q, k, v), "qkv"))
        q = q.view(T, NH, HS).transpose(0, 1)  # (NH, T, HS)
        k = k.view(T, NKV, HS).transpose(0, 1)  # (NKV, T, HS)
        v = v.view(T, NKV, HS).transpose(0, 1)
        if cfg["qk_norm"]:  # Qwen3: RMSNorm over each head's HS values, before RoPE
            q = rms_norm(q, P[p + "self_attn.q_norm.weight"], cfg["eps"])
            k = rms_norm(k, P[p + "self_attn.k_norm.weight"], cfg["eps"])
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = repeat_kv(k, NH // NKV)
        v = repeat_kv(v, NH // NKV)
        mask = window_mask if layer >= cfg["window_from"] else full_mask
        scores = (q @ k.transpose(1, 2)) * scaling + mask  # (NH, T, T)
        probs = torch.softmax(scores, dim=-1)
        y = (probs @ v).transpose(0, 1).reshape(T, NH * HS)
        h = residual + linear(P, lora, p + "self_attn.o_proj", y)
        residual = h
        x = rms_norm(h, P[p + "post_attention_layernorm.weight"], cfg["eps"])
        gate = linear(P, lora, p + "mlp.gate_proj", x)
        up = linear(P, lora, p + "mlp.up_proj", x)
        h = residual + linear(P, lora, p + "mlp.down_proj", torch.nn.functional.silu(gate) * up)
    h = rms_norm(h, P["model.norm.weight"], cfg["eps"])
    head = P["model.embed_tokens.weight"] if cfg["tied"] else P["lm_head.weight"]
    return h @ head.T


def run_job(job):
    c = job["config"]
    dtype = {"float32": torch.float32, "float64": torch.float64}[job.get("dtype", "float64")]
    NH = int(c["numHeads"])
    cfg = {
        "V": int(c["vocabSize"]),
        "C": int(c["hiddenSize"]),
        "L": int(c["numLayers"]),
        "NH": NH,
        "NKV": int(c.get("numKvHeads") or NH),
        "HS": int(c.get("headDim") or int(c["hiddenSize"]) // NH),
        "eps": float(c.get("rmsNormEps", 1e-5)),
        "theta": float(c.get("ropeTheta", 10000.0)),
        "window": int(c.get("slidingWindow") or 0),
        "tied": bool(c.get("tied", False)),
        "window_from": int(c.get("maxWindowLayers") or 0),
        "rope_scaling": c.get("ropeScaling"),
        "qkv_bias": bool(c.get("qkvBias", False)),
        "qk_norm": bool(c.get("qkNorm", False)),
    }
    def tensors(b64, table, trainable):
        flat = b64_to_f32(b64)
        out = {}
        for row in table:
            a = flat[row["offset"] : row["offset"] + row["size"]].astype(np.float64).reshape(row["shape"])
            out[row["name"]] = torch.tensor(a, dtype=dtype, requires_grad=trainable)
        return out

    lj = job.get("lora")
    lora = None
    if lj:
        lora = {"P": tensors(lj["params"], lj["table"], True), "scaling": float(lj["alpha"]) / int(lj["rank"])}
    P = tensors(job["params"], job["table"], lora is None)
    expected = {"model.embed_tokens.weight", "model.norm.weight"} | ({"lm_head.weight"} if not cfg["tied"] else set())
    missing = expected - P.keys()
    if missing:
        raise ValueError(f"table lacks {sorted(missing)}")

    tokens = [int(t) for t in job["tokens"]]
    lens = [int(n) for n in job["seqLens"]]
    N = len(tokens)
    if sum(lens) != N or min(lens, default=1) < 1:
        raise ValueError(f"seqLens {lens} do not split {N} tokens")
    weights = torch.tensor(job.get("weights") or [1.0] * N, dtype=dtype)

    logits_rows, logprobs, entropy = [], [], []
    start = 0
    for T in lens:
        logits = forward_sequence(P, cfg, tokens[start : start + T], lora)  # (T, V)
        logsm = torch.log_softmax(logits, dim=-1)
        target = torch.tensor(tokens[start + 1 : start + T], dtype=torch.long)
        zero = torch.zeros(1, dtype=dtype)
        lp = logsm[:-1].gather(1, target[:, None])[:, 0]
        ent = -(logsm[:-1].exp() * logsm[:-1]).sum(-1)
        logits_rows.append(logits)
        logprobs.append(torch.cat([zero, lp]))
        entropy.append(torch.cat([zero, ent]))
        start += T
    logits = torch.cat(logits_rows)
    logprobs = torch.cat(logprobs)
    entropy = torch.cat(entropy)
    loss = (weights * -logprobs).sum()  # first tokens have logprob 0, so their weights drop out
    loss.backward()
    return {
        "dtype": str(dtype).replace("torch.", ""),
        "logits": f64_to_b64(logits),
        "logprobs": f64_to_b64(logprobs),
        "entropy": f64_to_b64(entropy),
        "loss": float(loss.item()),
        "grads": {name: f64_to_b64(t.grad.reshape(-1)) for name, t in (lora["P"] if lora else P).items()},
    }


def main(argv):
    torch.set_num_threads(1)
    args = list(argv)
    out = None
    if "--out" in args:
        i = args.index("--out")
        out = args[i + 1]
        del args[i : i + 2]
    if args:
        with open(args[0]) as f:
            job = json.load(f)
    else:
        job = json.load(sys.stdin)
    result = [run_job(j) for j in job] if isinstance(job, list) else run_job(job)
    text = json.dumps(result)
    if out:
        with open(out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main(sys.argv[1:])
