#!/usr/bin/python3
"""PyTorch peer of the `nrt_step` benchmark (bench/nrt-step.js, issue 6): one full NRT step written the way a
PyTorch user would write it, sharing no code with nrt.

    rollout  G prompts × K traces: one batch of G·K streams, left-padded prompts (per-row positions and a key
             mask), a KV cache, torch.multinomial at temperature 1; a stream stops at any special token (SPEC §2)
             or at the trace limit; finished streams are dropped from the batch (caches compacted) once they
             are an eighth of it
    score    SPEC §2 sequences prompt ⊕ z ⊕ ⟨answer_start⟩ ⊕ y* for every trace and the empty trace of every
             question, right-padded into one batch (causal mask: a real token never sees the padding after it),
             ONE forward with autograd, log_softmax + gather; SPEC §3 in torch (c, b, R = f(c), R', A, s) and the
             per-token weights of SPEC §4
    update   loss = −Σ w·log π on the score's graph, backward, clip_grad_norm_(clip), torch.optim.AdamW.step()

The model is Hugging Face Llama (RMSNorm, half-split rotate_half RoPE, SwiGLU, no biases, untied lm_head) with
Hugging Face parameter names, loaded from the flat float32 buffer nrt's side writes (the same weights).

    peer_nrt_step.py --threads T serve JOB_DIR
JOB_DIR holds job.json ({config, table, prompts, answers, k, maxTraceTokens, temperature, specialIds,
answerStartId, objective, adamw}) and params.bin (the flat float32 parameters, laid out as `table` says).
Commands on stdin, one JSON object a line; answers on stdout, one line each:
    {"op": "info"}                        -> {"threads", "blas_threads", "wait_policy", "torch", "params"}
    {"op": "step", "reps": n, "seed": s}  -> {"values": [{"total", "rollout", "score", "update" (ms),
                                               "traceTokens", "emitted", "truncated", "loss"}]}
    {"op": "check", "traces": [[{"tokens", "emitted"}]]}
                                          -> {"loss", "gradNorm", "R": [[...]], "A": [[...]]} for the given traces
                                             (score + backward, no optimiser step), to check both sides agree
Each "step" starts from the job's initial weights (restored outside the timing), so every step samples from the
same model; the optimiser state carries on.
"""

import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as Fn
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Attention(nn.Module):
    def __init__(self, C, nh):
        super().__init__()
        self.nh, self.hs = nh, C // nh
        self.q_proj = nn.Linear(C, C, bias=False)
        self.k_proj = nn.Linear(C, C, bias=False)
        self.v_proj = nn.Linear(C, C, bias=False)
        self.o_proj = nn.Linear(C, C, bias=False)

    def forward(self, x, cos, sin, mask, cache=None, at=0):
        """x (B, T, C); cos/sin (B, 1, T, HS) per-row positions; mask (B|1, 1, T, S) additive.
        cache: (k, v) of (B, NH, Smax, HS), written at slots at .. at+T; attention runs over slots 0 .. at+T."""
        B, T, C = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.hs).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.nh, self.hs).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nh, self.hs).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            cache[0][:, :, at : at + T] = k
            cache[1][:, :, at : at + T] = v
            k, v = cache[0][:, :, : at + T], cache[1][:, :, : at + T]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hs)) + mask
        y = torch.softmax(att, dim=-1) @ v
        return self.o_proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, C, F):
        super().__init__()
        self.gate_proj = nn.Linear(C, F, bias=False)
        self.up_proj = nn.Linear(C, F, bias=False)
        self.down_proj = nn.Linear(F, C, bias=False)

    def forward(self, h):
        return self.down_proj(Fn.silu(self.gate_proj(h)) * self.up_proj(h))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        C = c["hiddenSize"]
        self.input_layernorm = RMSNorm(C, c["rmsNormEps"])
        self.self_attn = Attention(C, c["numHeads"])
        self.post_attention_layernorm = RMSNorm(C, c["rmsNormEps"])
        self.mlp = MLP(C, c["intermediateSize"])

    def forward(self, x, cos, sin, mask, cache=None, at=0):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, at)
        return x + self.mlp(self.post_attention_layernorm(x))


class Body(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocabSize"], c["hiddenSize"])
        self.layers = nn.ModuleList([Layer(c) for _ in range(c["numLayers"])])
        self.norm = RMSNorm(c["hiddenSize"], c["rmsNormEps"])


class Llama(nn.Module):
    """state_dict keys are the Hugging Face names (model.layers.0.self_attn.q_proj.weight, lm_head.weight, …)."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = Body(c)
        self.lm_head = nn.Linear(c["hiddenSize"], c["vocabSize"], bias=False)
        hs = c["hiddenSize"] // c["numHeads"]
        inv_freq = 1.0 / (c["ropeTheta"] ** (torch.arange(0, hs, 2).float() / hs))
        ang = torch.arange(c["maxPositionEmbeddings"]).float()[:, None] * inv_freq[None, :]
        emb = torch.cat((ang, ang), dim=-1)
        self.cos, self.sin = emb.cos(), emb.sin()  # (maxpos, HS)

    def forward(self, idx, pos, mask, caches=None, at=0):
        """idx, pos (B, T); mask additive (B|1, 1, T, S); returns logits (B, T, V)."""
        cos, sin = self.cos[pos].unsqueeze(1), self.sin[pos].unsqueeze(1)
        x = self.model.embed_tokens(idx)
        for i, layer in enumerate(self.model.layers):
            x = layer(x, cos, sin, mask, caches[i] if caches else None, at)
        return self.lm_head(self.model.norm(x))


NEG = float("-inf")


class Job:
    def __init__(self, job_dir):
        with open(os.path.join(job_dir, "job.json")) as f:
            j = json.load(f)
        self.j = j
        c = j["config"]
        self.c = c
        flat = np.fromfile(os.path.join(job_dir, "params.bin"), dtype="<f4")
        self.model = Llama(c)
        sd = {p["name"]: torch.from_numpy(flat[p["offset"] : p["offset"] + p["size"]].reshape(p["shape"]).copy())
              for p in j["table"]}
        self.model.load_state_dict(sd, strict=True)
        self.initial = [p.detach().clone() for p in self.model.parameters()]
        a = j["adamw"]
        self.clip = a["clip"]
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=a["lr"], betas=(a["beta1"], a["beta2"]),
                                     eps=a["eps"], weight_decay=a["weightDecay"])
        self.prompts, self.answers = j["prompts"], j["answers"]
        self.K, self.M = j["k"], j["maxTraceTokens"]
        self.special = torch.zeros(c["vocabSize"], dtype=torch.bool)
        self.special[j["specialIds"]] = True
        self.a_id = j["answerStartId"]

    def restore(self):
        with torch.no_grad():
            for p, p0 in zip(self.model.parameters(), self.initial):
                p.copy_(p0)

    # ---- rollout ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def rollout(self, seed):
        """K traces after each prompt: [[{"tokens", "emitted"}]] (tokens before the first special token)."""
        c, K, M = self.c, self.K, self.M
        g = torch.Generator().manual_seed(seed)
        rows = [p for p in self.prompts for _ in range(K)]
        B = len(rows)
        lens = torch.tensor([len(p) for p in rows])
        Pm = int(lens.max())
        pad = Pm - lens
        idx = torch.zeros(B, Pm, dtype=torch.long)
        for b, p in enumerate(rows):
            idx[b, Pm - len(p) :] = torch.tensor(p)
        slots = torch.arange(Pm + M)
        valid = slots[None, :] >= pad[:, None]  # (B, Smax): key slot holds a real token
        pos = (torch.arange(Pm)[None, :] - pad[:, None]).clamp(min=0)
        # prefill: causal over real keys; a padding query also sees itself (no all −inf row)
        q = torch.arange(Pm)
        allowed = (q[None, :] <= q[:, None])[None] & (valid[:, None, :Pm] | torch.eye(Pm, dtype=torch.bool)[None])
        mask = torch.zeros(B, 1, Pm, Pm).masked_fill_(~allowed[:, None], NEG)
        hs, nh = c["hiddenSize"] // c["numHeads"], c["numHeads"]
        caches = [(torch.empty(B, nh, Pm + M, hs), torch.empty(B, nh, Pm + M, hs)) for _ in range(c["numLayers"])]
        logits = self.model(idx, pos, mask, caches, 0)[:, -1]
        out = torch.zeros(B, M, dtype=torch.long)
        length = torch.full((B,), M, dtype=torch.long)  # trace length (tokens before the stop token)
        stop = torch.full((B,), -1, dtype=torch.long)
        live = torch.arange(B)  # stream of each batch row
        done = torch.zeros(B, dtype=torch.bool)  # per batch row: finished (kept until compaction)
        nextpos = lens.clone()
        temp = self.j["temperature"]
        for t in range(M):
            nxt = torch.multinomial(torch.softmax(logits / temp, dim=-1), 1, generator=g)[:, 0]
            fresh = ~done
            out[live[fresh], t] = nxt[fresh]
            hit = fresh & self.special[nxt]
            if hit.any():
                length[live[hit]] = t
                stop[live[hit]] = nxt[hit]
                done |= hit
            if t + 1 == M or bool(done.all()):
                break
            if int(done.sum()) * 8 >= done.numel():  # drop finished rows from the batch
                keep = (~done).nonzero()[:, 0]
                caches = [(k.index_select(0, keep), v.index_select(0, keep)) for k, v in caches]
                live, nxt, valid, nextpos = live[keep], nxt[keep], valid[keep], nextpos[keep]
                done = done[keep]
            S = Pm + t + 1
            m = torch.zeros(live.numel(), 1, 1, S).masked_fill_(~valid[:, None, None, :S], NEG)
            logits = self.model(nxt[:, None], nextpos[:, None], m, caches, Pm + t)[:, -1]
            nextpos = nextpos + 1
        G = len(self.prompts)
        return [[{"tokens": out[g_ * K + k, : length[g_ * K + k]].tolist(), "emitted": int(stop[g_ * K + k]) == self.a_id}
                 for k in range(K)] for g_ in range(G)]

    # ---- score: one batched forward, SPEC §3, the weights of SPEC §4 -------------------------------------------
    def score(self, traces):
        """Returns (loss tensor on the forward's graph, R (G, K), A (G, K))."""
        o = self.j["objective"]
        if (o["aggregation"], o["baseline"], o["advantage"], o["tokenWeight"]) != ("ws_nlog", "none", "group_std",
                                                                                  "fixed"):
            raise ValueError(f"only the default objective is written here, got {o}")
        lam = o["formatCoef"]
        G, K, a_id = len(self.prompts), self.K, self.a_id
        seqs, P, Z, T, emitted = [], [], [], [], []
        for g_, (p, y) in enumerate(zip(self.prompts, self.answers)):
            for tr in traces[g_]:  # trace sequences, row g*K + k
                seqs.append(p + tr["tokens"] + [a_id] + y)
                P.append(len(p)), Z.append(len(tr["tokens"])), T.append(len(y)), emitted.append(tr["emitted"])
        for p, y in zip(self.prompts, self.answers):  # empty-trace sequences, rows G*K + g
            seqs.append(p + [a_id] + y)
            P.append(len(p)), Z.append(0), T.append(len(y)), emitted.append(True)
        S, L = len(seqs), max(len(s) for s in seqs)
        idx = torch.zeros(S, L, dtype=torch.long)
        for i, s in enumerate(seqs):
            idx[i, : len(s)] = torch.tensor(s)
        P, Z, T = torch.tensor(P), torch.tensor(Z), torch.tensor(T)
        emitted = torch.tensor(emitted)
        causal = torch.full((L, L), NEG).triu(1)[None, None]
        pos = torch.arange(L)[None, :].expand(S, L)
        logits = self.model(idx, pos, causal)
        lp = torch.log_softmax(logits[:, :-1], dim=-1).gather(2, idx[:, 1:, None])[:, :, 0]  # (S, L-1): log π(x_t)
        # answer log-probabilities: token P+Z+1+i is lp[:, P+Z+i]
        Tm = int(T.max())
        i = torch.arange(Tm)[None, :]
        amask = i < T[:, None]
        at = (P + Z)[:, None] + i
        la = lp.detach().gather(1, at.clamp(max=L - 2)).masked_fill(~amask, 0.0)  # (S, Tm)
        logc = la[: G * K].view(G, K, Tm)
        logb = la[G * K :]  # (G, Tm), a constant
        am = amask[: G * K].view(G, K, Tm)
        Tk = T[: G * K].view(G, K).float()
        # ws_nlog: R = (1/T) Σ (−log b_i) c_i
        R = ((-logb)[:, None, :] * torch.exp(logc)).masked_fill(~am, 0.0).sum(-1) / Tk
        Rp = R  # baseline none
        mean = Rp.mean(1, keepdim=True)
        std = Rp.std(1, unbiased=True, keepdim=True)
        A = torch.where(std > 1e-12, (Rp - mean) / std, torch.zeros_like(Rp))  # group_std
        # per-token weights over lp's columns (column j holds token j+1), trace sequences only
        j = torch.arange(L - 1)[None, :] + 1
        Pt, Zt, Tt = P[: G * K, None], Z[: G * K, None], T[: G * K, None]
        trace = (j >= Pt) & (j <= Pt + Zt)  # z_k and ⟨answer_start⟩
        answer = (j > Pt + Zt) & (j <= Pt + Zt + Tt)
        fmt = (j == Pt + Zt) & ~emitted[: G * K, None]
        w = (A.reshape(-1, 1) * trace + 1.0 * answer + lam * fmt) / (G * K)  # token weight s = 1 (fixed)
        loss = -(w * lp[: G * K]).sum()
        return loss, R, A

    def update(self, loss):
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.opt.step()
        return float(norm)

    def step(self, seed):
        t0 = time.perf_counter()
        traces = self.rollout(seed)
        t1 = time.perf_counter()
        loss, _, _ = self.score(traces)
        t2 = time.perf_counter()
        self.update(loss)
        t3 = time.perf_counter()
        flat = [tr for grp in traces for tr in grp]
        return {
            "total": (t3 - t0) * 1e3,
            "rollout": (t1 - t0) * 1e3,
            "score": (t2 - t1) * 1e3,
            "update": (t3 - t2) * 1e3,
            "traceTokens": sum(len(tr["tokens"]) for tr in flat),
            "emitted": sum(tr["emitted"] for tr in flat),
            "truncated": sum(len(tr["tokens"]) == self.M for tr in flat),
            "loss": float(loss),
        }

    def check(self, traces):
        self.restore()
        loss, R, A = self.score(traces)
        self.model.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), float("inf"))
        self.model.zero_grad(set_to_none=True)
        return {"loss": float(loss), "gradNorm": float(norm), "R": R.tolist(), "A": A.tolist()}


def serve(job_dir):
    job = Job(job_dir)
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            op = cmd["op"]
            if op == "info":
                ans = {
                    "threads": torch.get_num_threads(),
                    "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
                    "wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                    "torch": torch.__version__,
                    "params": sum(p.numel() for p in job.model.parameters()),
                }
            elif op == "step":
                vals = []
                for r in range(cmd["reps"]):
                    job.restore()
                    vals.append(job.step(cmd["seed"] + r))
                ans = {"values": vals}
            elif op == "check":
                ans = job.check(cmd["traces"])
            else:
                ans = {"error": f"unknown op {op}"}
        except Exception as e:  # report, keep serving
            ans = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(ans) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    threads = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 1
    torch.set_num_threads(threads)
    if "serve" not in sys.argv:
        sys.exit(__doc__)
    serve(sys.argv[sys.argv.index("serve") + 1])
