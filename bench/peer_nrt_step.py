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
With job.peerMicroBatchTokens N > 0 (the 135m shape, whose one-pass graph would not fit in memory) the sequences
are cut into runs of consecutive rows of at most N tokens, each run padded on its own: the score's forward runs
under no_grad a run at a time, and the update runs each run's forward again with autograd and its backward
(gradients accumulate), then clips and steps once.

The model is Hugging Face Llama (RMSNorm, half-split rotate_half RoPE, SwiGLU, no biases; grouped-query attention
by repeat_kv when numKvHeads < numHeads; an untied lm_head, or with `tied` the logits x E^T on the embedding
matrix) with Hugging Face parameter names, loaded from the flat float32 buffer nrt's side writes (the same
weights). With job.lora the base is frozen (requires_grad=False) and a hand-written LoRA adapter is trained (no
peft): each targeted projection computes x W^T + (x A^T) B^T · alpha/R, A (R, in), B (out, R), loaded from
adapter.bin under PEFT's names (base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight, …); AdamW and the
gradient clip run over the adapter's tensors only.

    peer_nrt_step.py --threads T serve JOB_DIR
JOB_DIR holds job.json ({config, table, prompts, answers, k, maxTraceTokens, temperature, specialIds,
answerStartId, objective, adamw, and optionally peerMicroBatchTokens and lora: {rank, alpha, targets, table}}),
params.bin (the flat float32 parameters, laid out as `table` says) and with lora adapter.bin (the adapter's, laid
out as lora.table says).
Commands on stdin, one JSON object a line; answers on stdout, one line each:
    {"op": "info"}                        -> {"threads", "blas_threads", "wait_policy", "torch", "params" (the
                                             model's, without the adapter), "trained" (what AdamW updates)}
    {"op": "step", "reps": n, "seed": s}  -> {"values": [{"total", "rollout", "score", "update" (ms),
                                               "traceTokens", "emitted", "truncated", "loss"}]}
    {"op": "check", "traces": [[{"tokens", "emitted"}]]}
                                          -> {"loss", "gradNorm", "R": [[...]], "A": [[...]]} for the given traces
                                             (score + backward, no optimiser step), to check both sides agree
    {"op": "probe", "seed": s, "tokens": n, "groups": g}
                                          -> {"ms"}: a short step, timed: the rollout of every trace, at most n
                                             tokens each, then the score and update of the first g questions
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


def repeat_kv(x, n_rep):
    """(B, NKV, S, HS) -> (B, NKV·n_rep, S, HS): query head h reads key/value head h // n_rep (GQA)."""
    if n_rep == 1:
        return x
    B, nkv, S, hs = x.shape
    return x[:, :, None].expand(B, nkv, n_rep, S, hs).reshape(B, nkv * n_rep, S, hs)


class Proj(nn.Module):
    """A bias-free projection y = x W^T (nn.Linear's), plus a hand-written LoRA delta once add_lora() gives it one:
    y = x W^T + (x A^T) B^T · alpha/R, A (R, in), B (out, R) — PEFT's lora.Linear with lora_dropout 0."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_out, n_in))
        self.lora_A = self.lora_B = None

    def add_lora(self, A, B, scale):
        self.lora_A, self.lora_B, self.scale = nn.Parameter(A), nn.Parameter(B), scale

    def forward(self, x):
        y = Fn.linear(x, self.weight)
        if self.lora_A is None:
            return y
        return y + (x @ self.lora_A.T) @ self.lora_B.T * self.scale


class Attention(nn.Module):
    def __init__(self, C, nh, nkv, hs):
        super().__init__()
        self.nh, self.nkv, self.hs = nh, nkv, hs
        self.q_proj = Proj(C, nh * hs)
        self.k_proj = Proj(C, nkv * hs)
        self.v_proj = Proj(C, nkv * hs)
        self.o_proj = Proj(nh * hs, C)

    def forward(self, x, cos, sin, mask, cache=None, at=0):
        """x (B, T, C); cos/sin (B, 1, T, HS) per-row positions; mask (B|1, 1, T, S) additive.
        cache: (k, v) of (B, NKV, Smax, HS), written at slots at .. at+T; attention runs over slots 0 .. at+T."""
        B, T, C = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.hs).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.nkv, self.hs).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nkv, self.hs).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            cache[0][:, :, at : at + T] = k
            cache[1][:, :, at : at + T] = v
            k, v = cache[0][:, :, : at + T], cache[1][:, :, : at + T]
        k, v = repeat_kv(k, self.nh // self.nkv), repeat_kv(v, self.nh // self.nkv)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hs)) + mask
        y = torch.softmax(att, dim=-1) @ v
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.nh * self.hs))


class MLP(nn.Module):
    def __init__(self, C, F):
        super().__init__()
        self.gate_proj = Proj(C, F)
        self.up_proj = Proj(C, F)
        self.down_proj = Proj(F, C)

    def forward(self, h):
        return self.down_proj(Fn.silu(self.gate_proj(h)) * self.up_proj(h))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        C = c["hiddenSize"]
        self.input_layernorm = RMSNorm(C, c["rmsNormEps"])
        self.self_attn = Attention(C, c["numHeads"], c["numKvHeads"], c["headDim"])
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
    """state_dict keys are the Hugging Face names (model.layers.0.self_attn.q_proj.weight, lm_head.weight, …);
    with tied embeddings there is no lm_head: the logits are x E^T with E = model.embed_tokens.weight."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = Body(c)
        self.lm_head = None if c["tied"] else Proj(c["hiddenSize"], c["vocabSize"])
        hs = c["headDim"]
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
        x = self.model.norm(x)
        return Fn.linear(x, self.model.embed_tokens.weight) if self.lm_head is None else self.lm_head(x)


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
        sd = {p["name"]: torch.from_numpy(flat[p["offset"] : p["offset"] + p["size"]].reshape(p["shape"]))
              for p in j["table"]}
        self.model.load_state_dict(sd, strict=True)
        del flat, sd
        lora = j.get("lora")
        if lora:  # the base is frozen; the adapter (adapter.bin, laid out as lora["table"] says) is what is trained
            for p in self.model.parameters():
                p.requires_grad_(False)
            flat = np.fromfile(os.path.join(job_dir, "adapter.bin"), dtype="<f4")
            t = {p["name"]: torch.from_numpy(flat[p["offset"] : p["offset"] + p["size"]].reshape(p["shape"]))
                 for p in lora["table"]}
            prefix = "base_model.model."
            scale = lora["alpha"] / lora["rank"]
            mods = dict(self.model.named_modules())
            for name in [n for n in t if n.endswith(".lora_A.weight")]:
                proj = name[len(prefix) : -len(".lora_A.weight")]  # model.layers.N.self_attn.q_proj
                mods[proj].add_lora(t[name], t[name.replace(".lora_A.", ".lora_B.")], scale)
            self.trained = [p for n, p in self.model.named_parameters() if ".lora_" in n]
            if sum(p.numel() for p in self.trained) != flat.size:
                raise ValueError("the adapter table names projections this model does not have")
        else:
            self.trained = list(self.model.parameters())
        self.initial = [p.detach().clone() for p in self.trained]
        a = j["adamw"]
        self.clip = a["clip"]
        self.opt = torch.optim.AdamW(self.trained, lr=a["lr"], betas=(a["beta1"], a["beta2"]),
                                     eps=a["eps"], weight_decay=a["weightDecay"])
        self.prompts, self.answers = j["prompts"], j["answers"]
        self.K, self.M = j["k"], j["maxTraceTokens"]
        self.mb = j.get("peerMicroBatchTokens", 0)
        self.special = torch.zeros(c["vocabSize"], dtype=torch.bool)
        self.special[j["specialIds"]] = True
        self.a_id = j["answerStartId"]

    def restore(self):
        with torch.no_grad():
            for p, p0 in zip(self.trained, self.initial):
                p.copy_(p0)

    # ---- rollout ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def rollout(self, seed, M=None):
        """K traces after each prompt: [[{"tokens", "emitted"}]] (tokens before the first special token), of at
        most M tokens (default: the job's trace limit)."""
        c, K, M = self.c, self.K, M or self.M
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
        hs, nkv = c["headDim"], c["numKvHeads"]
        caches = [(torch.empty(B, nkv, Pm + M, hs), torch.empty(B, nkv, Pm + M, hs)) for _ in range(c["numLayers"])]
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

    # ---- score: one batched forward (or one per micro-batch), SPEC §3, the weights of SPEC §4 ---------------------
    def logprobs(self, idx):
        """idx (S, L) right-padded sequences -> (S, L-1) log π(x_t) of each next token, on autograd's graph when it
        records (causal mask: a real token never sees the padding after it)."""
        S, L = idx.shape
        causal = torch.full((L, L), NEG).triu(1)[None, None]
        pos = torch.arange(L)[None, :].expand(S, L)
        logits = self.model(idx, pos, causal)
        return torch.log_softmax(logits[:, :-1], dim=-1).gather(2, idx[:, 1:, None])[:, :, 0]

    def runs(self, lens):
        """Consecutive row ranges [r0, r1) of at most self.mb tokens each (a longer row is a run of its own)."""
        out, r0, n = [], 0, 0
        for r, len_ in enumerate(lens):
            if n > 0 and n + len_ > self.mb:
                out.append((r0, r))
                r0, n = r, 0
            n += len_
        out.append((r0, len(lens)))
        return out

    def score(self, traces):
        """Returns a Scored: the loss (on the forward's graph when there is one pass), R (G, K), A (G, K).
        With micro-batches (job.peerMicroBatchTokens > 0) the forward runs under no_grad, a run of rows at a time,
        and the update runs each run's forward again with autograd, then its backward (gradient accumulation)."""
        o = self.j["objective"]
        if (o["aggregation"], o["baseline"], o["advantage"], o["tokenWeight"]) != ("ws_nlog", "none", "group_std",
                                                                                  "fixed"):
            raise ValueError(f"only the default objective is written here, got {o}")
        lam = o["formatCoef"]
        G, K, a_id = len(traces), self.K, self.a_id  # the first G questions (all of them but in a probe)
        prompts, answers = self.prompts[:G], self.answers[:G]
        seqs, P, Z, T, emitted = [], [], [], [], []
        for g_, (p, y) in enumerate(zip(prompts, answers)):
            for tr in traces[g_]:  # trace sequences, row g*K + k
                seqs.append(p + tr["tokens"] + [a_id] + y)
                P.append(len(p)), Z.append(len(tr["tokens"])), T.append(len(y)), emitted.append(tr["emitted"])
        for p, y in zip(prompts, answers):  # empty-trace sequences, rows G*K + g
            seqs.append(p + [a_id] + y)
            P.append(len(p)), Z.append(0), T.append(len(y)), emitted.append(True)
        S, L = len(seqs), max(len(s) for s in seqs)
        idx = torch.zeros(S, L, dtype=torch.long)
        for i, s in enumerate(seqs):
            idx[i, : len(s)] = torch.tensor(s)
        lens = [len(s) for s in seqs]
        P, Z, T = torch.tensor(P), torch.tensor(Z), torch.tensor(T)
        emitted = torch.tensor(emitted)
        runs = None
        if self.mb and sum(lens) > self.mb:
            runs = self.runs(lens)
            lp = torch.zeros(S, L - 1)
            with torch.no_grad():
                for r0, r1 in runs:
                    Lr = max(lens[r0:r1])
                    lp[r0:r1, : Lr - 1] = self.logprobs(idx[r0:r1, :Lr])
        else:
            lp = self.logprobs(idx)  # (S, L-1): log π(x_t)
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
        if runs is None:
            return Scored(loss, R, A, loss.backward)

        def backward():
            """each run's forward with autograd and its backward, over the trace rows (the empty-trace rows, rows
            G·K and up, have weight 0: b is a constant); the loss"""
            total = 0.0
            for r0, r1 in runs:
                r1 = min(r1, G * K)
                if r0 >= r1:
                    continue
                Lr = max(lens[r0:r1])
                part = -(w[r0:r1, : Lr - 1] * self.logprobs(idx[r0:r1, :Lr])).sum()
                part.backward()
                total += float(part)
            return total

        return Scored(float(loss), R, A, backward)

    def update(self, scored):
        self.opt.zero_grad(set_to_none=True)
        scored.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.trained, self.clip)
        self.opt.step()
        return float(norm)

    def step(self, seed, M=None):
        t0 = time.perf_counter()
        traces = self.rollout(seed, M)
        t1 = time.perf_counter()
        scored = self.score(traces)
        t2 = time.perf_counter()
        self.update(scored)
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
            "loss": float(scored.loss),
        }

    def probe(self, seed, M, groups):
        """A short step, for choosing a thread setting: all G·K traces of at most M tokens, the score and the
        update on the first `groups` questions' only; its time (ms)."""
        self.restore()
        t0 = time.perf_counter()
        traces = self.rollout(seed, M)
        self.update(self.score(traces[:groups]))
        return (time.perf_counter() - t0) * 1e3

    def check(self, traces):
        self.restore()
        scored = self.score(traces)
        self.model.zero_grad(set_to_none=True)
        back = scored.backward()
        loss = float(scored.loss) if back is None else back  # a micro-batched backward returns its own loss
        norm = torch.nn.utils.clip_grad_norm_(self.trained, float("inf"))
        self.model.zero_grad(set_to_none=True)
        return {"loss": loss, "gradNorm": float(norm), "R": scored.R.tolist(), "A": scored.A.tolist()}


class Scored:
    """A scored batch: the loss (a tensor on the forward's graph, or its value), R, A, and the loss's backward."""

    def __init__(self, loss, R, A, backward):
        self.loss, self.R, self.A, self.backward = loss, R, A, backward


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
                    "params": sum(p.numel() for n, p in job.model.named_parameters() if ".lora_" not in n),
                    "trained": sum(p.numel() for p in job.trained),
                }
            elif op == "step":
                vals = []
                for r in range(cmd["reps"]):
                    job.restore()
                    vals.append(job.step(cmd["seed"] + r))
                ans = {"values": vals}
            elif op == "check":
                ans = job.check(cmd["traces"])
            elif op == "probe":
                ans = {"ms": job.probe(cmd["seed"], cmd["tokens"], cmd["groups"])}
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
