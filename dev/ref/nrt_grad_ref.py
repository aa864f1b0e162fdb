#!/usr/bin/python3
"""Independent PyTorch reference for `nrt grad` (SPEC §2-§4, §6, §8): the NRT loss of one batch and its gradient.

Usage
    /usr/bin/python3 dev/ref/nrt_grad_ref.py --model DIR --batch FILE --out DIR [--dtype float64|float32]
    /usr/bin/python3 dev/ref/nrt_grad_ref.py --jobs JOBS.json [--dtype float64|float32]

    DIR      a Hugging Face model directory: config.json + model.safetensors (F32, F16 or BF16)
    FILE     an `nrt grad` batch (SPEC §6), optionally with "method": "sft" in its config (SPEC §8)
    --out    writes OUT/grads.safetensors (dL/dθ under the Hugging Face names, float32; with tied embeddings only
             model.embed_tokens.weight) and OUT/stats.json ({loss, groups: [{R, R_prime, A, c, b}]}, as nrt does)
    --jobs   a JSON list of {"model", "batch", "out"} objects, run in one process (one torch import)
    --dtype  compute precision (default float64; float32 shows the rounding floor of an honest float32 run)

What it computes, written from the SPEC and nothing else of nrt's:
  - sequences (§2): prompt ⊕ z_k ⊕ ⟨answer_start⟩ ⊕ y* for every trace, and prompt ⊕ ⟨answer_start⟩ ⊕ y* (the
    empty trace), each run on its own from position 0 by the Llama/Mistral forward of dev/ref/llama_ref.py;
  - c_{k,i} = π(y*_i | x, z_k, y*_<i), b_i = π(y*_i | x, ∅, y*_<i) (b detached);
  - R_k = f(c_k) for f in logp, prob, gm, am, ws_inv, ws_nlog, in log space (§3); the token signal
    g_{k,i} = c_i ∂f/∂c_i is NOT taken from the §3 table but from autograd, as ∂f/∂(log c_i) with w fixed;
  - baselines none / clip (f(b): f with c = b and the same weights), advantages group_std (unbiased std, std ≤
    1e-12 → 0), rloo, loo_mean, K = 1 → 0; token weights fixed / derived / reward / none (all detached);
  - the loss of §4 (one update per batch, ρ = 1), normalised by 1/N with N = Σ_g K_g, the batch's number of traces
    (every trace weighs 1/N, also where groups differ in size), differentiated by torch.autograd;
  - "method": "sft" (§5, §8): (1/G) Σ_g [−log π(⟨answer_start⟩) − Σ_i log π(y*_i)] on prompt ⊕ ⟨answer_start⟩ ⊕ y*.
    Its stats.json carries per group the b array (the probabilities of that very sequence) and empty R/A/c lists.
Missing config keys take the §4 defaults (ws_nlog, none, group_std, fixed, format_coef 0.3).
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_ref import forward_sequence  # noqa: E402  (the independent forward of every family)

DEFAULTS = {"aggregation": "ws_nlog", "baseline": "none", "advantage": "group_std", "token_weight": "fixed",
            "format_coef": 0.3}
MIN_GROUP_STD = 1e-12


class BatchError(ValueError):
    pass


# ---------------------------------------------------------------------------------------------------------------
# safetensors, by hand: u64 LE header length N, N bytes of JSON, then the raw little-endian data section
# ---------------------------------------------------------------------------------------------------------------

def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        buf = data[a:b]
        dt = info["dtype"]
        if dt == "F32":
            arr = np.frombuffer(buf, dtype="<f4").astype(np.float64)
        elif dt == "F64":
            arr = np.frombuffer(buf, dtype="<f8").copy()
        elif dt == "F16":
            arr = np.frombuffer(buf, dtype="<f2").astype(np.float64)
        elif dt == "BF16":
            u = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32).astype(np.float64)
        else:
            raise ValueError(f"{path}: {name}: unsupported dtype {dt}")
        shape = info["shape"]
        if arr.size != int(np.prod(shape, dtype=np.int64)):
            raise ValueError(f"{path}: {name}: {arr.size} values for shape {shape}")
        out[name] = arr.reshape(shape)
    return out


def write_safetensors(path, tensors):
    """tensors: list of (name, float64 ndarray) → F32 file, names in the given order."""
    header, chunks, offset = {}, [], 0
    for name, arr in tensors:
        b = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    header["__metadata__"] = {"format": "pt", "producer": "dev/ref/nrt_grad_ref.py"}
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)  # align the data section to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for c in chunks:
            f.write(c)


# ---------------------------------------------------------------------------------------------------------------
# model directory → parameters and the config dict llama_ref.forward_sequence takes
# ---------------------------------------------------------------------------------------------------------------

def rope_scaling_of(hf):
    """config.json's rope_scaling (or rope_parameters) in the form llama_ref takes: None, linear or llama3."""
    r = hf.get("rope_scaling") or hf.get("rope_parameters")
    if not r:
        return None
    kind = r.get("rope_type", r.get("type", "default"))
    if kind == "default":
        return None
    if kind == "linear":
        return {"type": "linear", "factor": float(r["factor"])}
    if kind == "llama3":
        return {"type": "llama3", "factor": float(r["factor"]), "lowFreqFactor": float(r["low_freq_factor"]),
                "highFreqFactor": float(r["high_freq_factor"]),
                "originalMaxPositionEmbeddings": float(r["original_max_position_embeddings"])}
    raise ValueError(f"config.json: rope_scaling type {kind!r} is not supported")


def load_model(dir_, dtype):
    with open(os.path.join(dir_, "config.json")) as f:
        hf = json.load(f)
    family = hf.get("model_type")
    if family not in ("llama", "mistral", "qwen2", "qwen3"):
        raise ValueError(f"config.json: model_type {family!r} is not supported")
    for key, ok in (("attention_bias", lambda v: not v), ("mlp_bias", lambda v: not v),
                    ("hidden_act", lambda v: v == "silu")):
        if key in hf and not ok(hf[key]) and not (family == "qwen2" and key == "attention_bias"):
            raise ValueError(f"config.json: {key} = {hf[key]!r} is not supported")
    C = int(hf["hidden_size"])
    NH = int(hf["num_attention_heads"])
    window, window_from = None, 0
    if family == "mistral":
        window = hf.get("sliding_window", 4096)  # MistralConfig's default when the key is absent
    elif family in ("qwen2", "qwen3") and hf.get("use_sliding_window"):
        # Qwen2Config: sliding_window only with use_sliding_window, on the layers >= max_window_layers
        window, window_from = hf.get("sliding_window", 4096), int(hf.get("max_window_layers", 28))
    cfg = {
        "V": int(hf["vocab_size"]),
        "C": C,
        "L": int(hf["num_hidden_layers"]),
        "NH": NH,
        "NKV": int(hf.get("num_key_value_heads") or NH),
        "HS": int(hf.get("head_dim") or (128 if family == "qwen3" else C // NH)),
        "eps": float(hf.get("rms_norm_eps", 1e-6)),
        "theta": float(hf.get("rope_theta", 10000.0)),
        "window": int(window or 0),
        "window_from": window_from,
        "tied": bool(hf.get("tie_word_embeddings", False)),
        "rope_scaling": rope_scaling_of(hf),
        "qkv_bias": family == "qwen2",
        "qk_norm": family == "qwen3",
    }
    raw = read_safetensors(os.path.join(dir_, "model.safetensors"))
    if cfg["tied"]:
        raw.pop("lm_head.weight", None)  # the output matrix is the embedding
    names = ["model.embed_tokens.weight"]
    for i in range(cfg["L"]):
        p = f"model.layers.{i}."
        names += [p + "input_layernorm.weight"]
        names += [p + f"self_attn.{x}_proj.weight" for x in "qkvo"]
        if cfg["qkv_bias"]:
            names += [p + f"self_attn.{x}_proj.bias" for x in "qkv"]
        if cfg["qk_norm"]:
            names += [p + f"self_attn.{x}_norm.weight" for x in "qk"]
        names += [p + "post_attention_layernorm.weight"]
        names += [p + f"mlp.{x}_proj.weight" for x in ("gate", "up", "down")]
    names += ["model.norm.weight"] + ([] if cfg["tied"] else ["lm_head.weight"])
    missing = [n for n in names if n not in raw]
    extra = [n for n in raw if n not in names]
    if missing or extra:
        raise ValueError(f"{dir_}: missing tensors {missing}, unexpected tensors {extra}")
    P = {n: torch.tensor(raw[n], dtype=dtype, requires_grad=True) for n in names}
    return P, cfg, names


# ---------------------------------------------------------------------------------------------------------------
# the batch (SPEC §6), checked strictly
# ---------------------------------------------------------------------------------------------------------------

def token_ids(v, where, V):
    if not isinstance(v, list):
        raise BatchError(f"{where}: must be an array of token ids")
    for i, t in enumerate(v):
        if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < V:
            raise BatchError(f"{where}[{i}]: token id {t!r} is not in [0, {V})")
    return v


def parse_batch(b, V):
    cfg = dict(DEFAULTS)
    given = b.get("config", {})
    method = given.get("method")
    if method not in (None, "sft"):
        raise BatchError(f"config.method: only 'sft' is understood, got {method!r}")
    for k, v in given.items():
        if k == "method":
            continue
        if k not in DEFAULTS:
            raise BatchError(f"config.{k}: unknown key")
        cfg[k] = v
    allowed = {"aggregation": AGGREGATIONS, "baseline": ("none", "clip"), "advantage": ADVANTAGES,
               "token_weight": ("fixed", "derived", "reward", "none")}
    for k, names in allowed.items():
        if cfg[k] not in names:
            raise BatchError(f"config.{k}: {cfg[k]!r} is not one of {list(names)}")
    if not isinstance(cfg["format_coef"], (int, float)) or cfg["format_coef"] < 0:
        raise BatchError(f"config.format_coef: {cfg['format_coef']!r} is not a number ≥ 0")
    a = b.get("answer_start_id")
    if isinstance(a, bool) or not isinstance(a, int) or not 0 <= a < V:
        raise BatchError(f"answer_start_id: {a!r} is not a token id in [0, {V})")
    groups = []
    for g, q in enumerate(b["groups"]):
        w = f"groups[{g}]"
        prompt = token_ids(q["prompt"], w + ".prompt", V)
        answer = token_ids(q["answer"], w + ".answer", V)
        if not prompt or not answer:
            raise BatchError(f"{w}: prompt and answer must not be empty")
        traces = []
        for k, t in enumerate(q.get("traces", [])):
            if not isinstance(t.get("emitted"), bool):
                raise BatchError(f"{w}.traces[{k}].emitted: must be true or false")
            traces.append((token_ids(t["tokens"], f"{w}.traces[{k}].tokens", V), t["emitted"]))
        groups.append({"prompt": prompt, "answer": answer, "traces": traces})
    return cfg, method, a, groups


# ---------------------------------------------------------------------------------------------------------------
# SPEC §3: aggregations (log space), baselines, advantages, token weights
# ---------------------------------------------------------------------------------------------------------------

def _ws_terms(logc, logb, kind):
    w = torch.exp(-logb) if kind == "ws_inv" else -logb  # w_i = 1/b_i or −log b_i, from the detached b
    return w * torch.exp(logc)


AGGREGATIONS = {
    "logp": lambda lc, lb: lc.sum(),
    "prob": lambda lc, lb: torch.exp(lc.sum()),
    "gm": lambda lc, lb: torch.exp(lc.mean()),
    "am": lambda lc, lb: torch.exp(lc).mean(),
    "ws_inv": lambda lc, lb: _ws_terms(lc, lb, "ws_inv").mean(),
    "ws_nlog": lambda lc, lb: _ws_terms(lc, lb, "ws_nlog").mean(),
}


def reward_and_signal(name, logc, logb):
    """R = f(c) and g_i = c_i ∂f/∂c_i = ∂f/∂(log c_i), by autograd on a detached copy of log c (w fixed)."""
    lc = logc.detach().clone().requires_grad_(True)
    R = AGGREGATIONS[name](lc, logb.detach())
    (g,) = torch.autograd.grad(R, lc)
    return R.detach(), g.detach()


def adv_group_std(Rp):
    K = Rp.numel()
    if K < 2:
        return torch.zeros_like(Rp)
    std = Rp.std(unbiased=True)
    if std.item() <= MIN_GROUP_STD:
        return torch.zeros_like(Rp)
    return (Rp - Rp.mean()) / std


def adv_rloo(Rp):
    K = Rp.numel()
    if K < 2:
        return torch.zeros_like(Rp)
    return (Rp - Rp.mean()) * K / (K - 1)


def adv_loo_mean(Rp):
    K = Rp.numel()
    if K < 2:
        return torch.zeros_like(Rp)
    return torch.stack([Rp[k] - torch.cat([Rp[:k], Rp[k + 1:]]).mean() for k in range(K)])


ADVANTAGES = {"group_std": adv_group_std, "rloo": adv_rloo, "loo_mean": adv_loo_mean}


def token_weight(name, R, g):
    return {"fixed": torch.ones_like(g), "derived": g, "reward": torch.full_like(g, float(R)),
            "none": torch.zeros_like(g)}[name]


# ---------------------------------------------------------------------------------------------------------------
# SPEC §2 + §4: sequences, log-probabilities, the loss
# ---------------------------------------------------------------------------------------------------------------

def seq_logprobs(P, cfg, tokens):
    """lp[t] = log π(x_t | x_<t) for t ≥ 1 (lp[0] = 0, never used)."""
    logits = forward_sequence(P, cfg, tokens)  # (T, V)
    logsm = torch.log_softmax(logits, dim=-1)
    tgt = torch.tensor(tokens[1:], dtype=torch.long)
    lp = logsm[:-1].gather(1, tgt[:, None])[:, 0]
    return torch.cat([torch.zeros(1, dtype=lp.dtype), lp])


def run(model_dir, batch_path, out_dir, dtype):
    P, cfg, names = load_model(model_dir, dtype)
    with open(batch_path) as f:
        batch = json.load(f)
    conf, method, a_id, groups = parse_batch(batch, cfg["V"])
    G = len(groups)
    loss = torch.zeros((), dtype=dtype)
    stats = []
    if method == "sft":
        for q in groups:
            Pn = len(q["prompt"])
            lp = seq_logprobs(P, cfg, q["prompt"] + [a_id] + q["answer"])
            # −log π(⟨answer_start⟩) − Σ_i log π(y*_i): every position from P on
            loss = loss - lp[Pn:].sum() / G
            b = torch.exp(lp[Pn + 1:]).detach()
            stats.append({"R": [], "R_prime": [], "A": [], "c": [], "b": b.tolist()})
    else:
        if any(len(q["traces"]) == 0 for q in groups):
            raise BatchError("every group needs at least one trace")
        N = sum(len(q["traces"]) for q in groups)  # SPEC §4: N = Σ_g K_g
        f = conf["aggregation"]
        for q in groups:
            Pn, T = len(q["prompt"]), len(q["answer"])
            lp_empty = seq_logprobs(P, cfg, q["prompt"] + [a_id] + q["answer"])
            logb = lp_empty[Pn + 1:].detach()  # b is a constant (SPEC §2)
            assert logb.numel() == T
            lps, logcs, Rs, gs = [], [], [], []
            for z, _ in q["traces"]:
                Z = len(z)
                lp = seq_logprobs(P, cfg, q["prompt"] + z + [a_id] + q["answer"])
                logc = lp[Pn + Z + 1:]
                R, g = reward_and_signal(f, logc, logb)
                lps.append(lp)
                logcs.append(logc)
                Rs.append(R)
                gs.append(g)
            R = torch.stack(Rs)
            if conf["baseline"] == "clip":
                fb, _ = reward_and_signal(f, logb, logb)  # f applied to b with the same weights
                Rp = torch.clamp(R - fb, min=0.0)
            else:
                Rp = R.clone()
            A = ADVANTAGES[conf["advantage"]](Rp).detach()
            for k, (z, emitted) in enumerate(q["traces"]):
                Z = len(z)
                lp = lps[k]
                s = token_weight(conf["token_weight"], Rs[k], gs[k]).detach()
                trace_term = -A[k] * lp[Pn:Pn + Z + 1].sum()  # z_k and ⟨answer_start⟩
                answer_term = -(s * logcs[k]).sum()
                format_term = -float(conf["format_coef"]) * (0.0 if emitted else 1.0) * lp[Pn + Z]
                loss = loss + (trace_term + answer_term + format_term) / N
            stats.append({
                "R": R.tolist(),
                "R_prime": Rp.tolist(),
                "A": A.tolist(),
                "c": [torch.exp(lc).detach().tolist() for lc in logcs],
                "b": torch.exp(logb).tolist(),
            })
    loss.backward()
    os.makedirs(out_dir, exist_ok=True)
    grads = [(n, P[n].grad.detach().cpu().numpy()) for n in names]
    write_safetensors(os.path.join(out_dir, "grads.safetensors"), grads)
    result = {"loss": float(loss.item()), "groups": stats}
    for gs_ in stats:  # JSON has no NaN/Infinity: refuse rather than write an unreadable file
        for v in gs_["R"] + gs_["R_prime"] + gs_["A"]:
            if not math.isfinite(v):
                raise ValueError(f"non-finite statistic {v}")
    with open(os.path.join(out_dir, "stats.json"), "w") as f:
        json.dump(result, f)
        f.write("\n")
    return result


def main(argv):
    torch.set_num_threads(1)
    args = {}
    i = 0
    while i < len(argv):
        if argv[i] in ("--model", "--batch", "--out", "--jobs", "--dtype") and i + 1 < len(argv):
            args[argv[i][2:]] = argv[i + 1]
            i += 2
        else:
            sys.exit(f"nrt_grad_ref.py: unexpected argument {argv[i]!r}\n{__doc__}")
    dtype = {"float64": torch.float64, "float32": torch.float32}[args.get("dtype", "float64")]
    if "jobs" in args:
        with open(args["jobs"]) as f:
            jobs = json.load(f)
    elif all(k in args for k in ("model", "batch", "out")):
        jobs = [{"model": args["model"], "batch": args["batch"], "out": args["out"]}]
    else:
        sys.exit(f"nrt_grad_ref.py: need --model, --batch and --out (or --jobs)\n{__doc__}")
    for j in jobs:
        try:
            run(j["model"], j["batch"], j["out"], dtype)
        except BatchError as e:
            sys.exit(f"nrt_grad_ref.py: {j['batch']}: {e}")


if __name__ == "__main__":
    main(sys.argv[1:])
