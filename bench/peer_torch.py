#!/usr/bin/python3
"""PyTorch peer for `npm run bench` (bench/run.js): the same workloads as nrt's, written the way a PyTorch user
would write them (nn.Module Llama, torch.optim.AdamW, a batched KV-cache sampler), sharing no code with nrt.

The model is Hugging Face Llama: RMSNorm, half-split rotate_half RoPE, causal grouped-query attention (numKvHeads,
default numHeads; keys and values repeated per query head as transformers' repeat_kv does), SwiGLU MLP, no biases,
lm_head untied or tied to embed_tokens (config "tied"). Its parameter count equals nrt's for the same config (checked
by run.js).

Two modes (after --threads T):
    peer_torch.py serve     one JSON command a line on stdin, one JSON answer a line on stdout, so that run.js can
                            interleave repetitions with nrt's in the same run:
        {"op": "info"}                                   -> {"threads", "blas_threads", "params", "torch"}
        {"op": "sgemm", "n": 1024, "reps": 3}            -> {"values": [GFLOP/s per call]}
        {"op": "train", "reps": 3, "config": {...}}      -> {"values": [ms per step]}
        {"op": "sample", "reps": 1, "config": {...}}     -> {"values": [tokens/s per run]} ("maxNew" may
                                                            override the config's, for a short warm-up)
        {"op": "reset"}                                  -> {} (drops the models, so that a larger one fits)
    A worker keeps one trainer and one sampler, for the config it last saw.
    peer_torch.py rss JSON  runs the training loop of JSON ({"config", "steps"}) and prints {"maxrss_mb"}.

Threads: torch.set_num_threads(--threads); OpenBLAS (Debian's pthread build behind libblas.so.3) takes
OPENBLAS_NUM_THREADS from the environment, which run.js sets per worker (bench/_workers.js).
"""

import gc
import json
import math
import os
import resource
import sys
import time

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


def rope_tables(T, hs, theta):
    inv_freq = 1.0 / (theta ** (torch.arange(0, hs, 2).float() / hs))
    freqs = torch.arange(T).float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)  # (T, HS)
    return emb.cos(), emb.sin()


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        C, F = c["hiddenSize"], c["intermediateSize"]
        self.nh, self.hs = c["numHeads"], C // c["numHeads"]
        self.nkv = c.get("numKvHeads", self.nh)
        self.input_layernorm = RMSNorm(C, c["rmsNormEps"])
        self.q_proj = nn.Linear(C, C, bias=False)
        self.k_proj = nn.Linear(C, self.nkv * self.hs, bias=False)
        self.v_proj = nn.Linear(C, self.nkv * self.hs, bias=False)
        self.o_proj = nn.Linear(C, C, bias=False)
        self.post_attention_layernorm = RMSNorm(C, c["rmsNormEps"])
        self.gate_proj = nn.Linear(C, F, bias=False)
        self.up_proj = nn.Linear(C, F, bias=False)
        self.down_proj = nn.Linear(F, C, bias=False)

    def heads(self, t, n):  # (B, T, n * HS) -> (B, n, T, HS)
        B, T, _ = t.shape
        return t.view(B, T, n, self.hs).transpose(1, 2)

    def attend(self, x, cos, sin, mask, cache=None, pos=0):
        B, T, C = x.shape
        q = self.heads(self.q_proj(x), self.nh)
        k, v = self.heads(self.k_proj(x), self.nkv), self.heads(self.v_proj(x), self.nkv)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:  # (B, NKV, Tmax, HS) key and value caches, filled up to pos + T
            cache[0][:, :, pos : pos + T] = k
            cache[1][:, :, pos : pos + T] = v
            k, v = cache[0][:, :, : pos + T], cache[1][:, :, : pos + T]
        if self.nkv != self.nh:  # repeat_kv
            k = k.repeat_interleave(self.nh // self.nkv, dim=1)
            v = v.repeat_interleave(self.nh // self.nkv, dim=1)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hs))
        if mask is not None:
            att = att + mask
        y = torch.softmax(att, dim=-1) @ v
        return self.o_proj(y.transpose(1, 2).reshape(B, T, C))

    def forward(self, x, cos, sin, mask, cache=None, pos=0):
        x = x + self.attend(self.input_layernorm(x), cos, sin, mask, cache, pos)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(Fn.silu(self.gate_proj(h)) * self.up_proj(h))


class LoraLinear(nn.Module):
    """A frozen nn.Linear plus a LoRA delta written by hand, as PEFT's lora.Linear computes it with lora_dropout 0:
    base(x) + (x @ A^T) @ B^T * (alpha / r); A (r, in) Kaiming-uniform, B (out, r) zero; only A and B train."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        self.base.weight.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scale = alpha / r

    def forward(self, x):
        return self.base(x) + (x @ self.lora_A.t()) @ self.lora_B.t() * self.scale


LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c["vocabSize"], c["hiddenSize"])
        self.layers = nn.ModuleList([Block(c) for _ in range(c["numLayers"])])
        self.norm = RMSNorm(c["hiddenSize"], c["rmsNormEps"])
        self.lm_head = nn.Linear(c["hiddenSize"], c["vocabSize"], bias=False)
        if c.get("tied"):
            self.lm_head.weight = self.embed_tokens.weight
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)
        lora = c.get("lora")
        if lora:  # config "lora": {rank, alpha}: every base parameter frozen, an adapter on the seven projections
            for p in self.parameters():
                p.requires_grad_(False)
            for layer in self.layers:
                for name in LORA_TARGETS:
                    setattr(layer, name, LoraLinear(getattr(layer, name), lora["rank"], lora["alpha"]))

    def forward(self, idx, caches=None, pos=0):
        B, T = idx.shape
        hs = self.c["hiddenSize"] // self.c["numHeads"]
        cos, sin = rope_tables(pos + T, hs, self.c["ropeTheta"])
        cos, sin = cos[pos:], sin[pos:]
        mask = None
        if T > 1:
            mask = torch.full((T, pos + T), float("-inf")).triu(pos + 1)
        x = self.embed_tokens(idx)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, mask, caches[i] if caches else None, pos)
        return self.lm_head(self.norm(x))


def batch_tokens(c):
    # seqLen + 1 tokens a row, so that the model runs on seqLen positions, as nrt does
    B, T, V = c["batch"], c["seqLen"] + 1, c["vocabSize"]
    return torch.tensor([(i * 7919) % V for i in range(B * T)], dtype=torch.long).view(B, T)


class Trainer:
    def __init__(self, c):
        torch.manual_seed(1)
        self.model = Llama(c)
        self.trained = [p for p in self.model.parameters() if p.requires_grad]  # the adapter's alone with LoRA
        self.opt = torch.optim.AdamW(self.trained, lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.01)
        self.idx = batch_tokens(c)

    def step(self):
        logits = self.model(self.idx[:, :-1])
        loss = Fn.cross_entropy(logits.reshape(-1, logits.shape[-1]), self.idx[:, 1:].reshape(-1))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.trained, 1.0)
        self.opt.step()
        return loss.item()


@torch.no_grad()
def sample(model, c, seed, M):
    """Batched sampling with a KV cache: prompts (B, P), then M new tokens per stream at c's temperature."""
    g = torch.Generator().manual_seed(seed)
    B, P = c["streams"], c["promptLen"]
    hs, nkv = c["hiddenSize"] // c["numHeads"], c.get("numKvHeads", c["numHeads"])
    caches = [
        (torch.zeros(B, nkv, P + M, hs), torch.zeros(B, nkv, P + M, hs))
        for _ in range(c["numLayers"])
    ]
    prompts = torch.tensor([(b * 31 + i * 7) % c["vocabSize"] for b in range(B) for i in range(P)]).view(B, P)
    logits = model(prompts, caches, 0)[:, -1]
    out = torch.empty(B, M, dtype=torch.long)
    for t in range(M):
        nxt = torch.multinomial(torch.softmax(logits / c["temperature"], dim=-1), 1, generator=g)
        out[:, t] = nxt[:, 0]
        if t + 1 < M:
            logits = model(nxt, caches, P + t)[:, -1]
    return out


def sgemm(n, reps):
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = []
    torch.mm(a, b)
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        out.append(2.0 * n**3 / (time.perf_counter() - t0) / 1e9)
    return out


def serve():
    trainer, sampler = None, None  # (config, model) of the last config seen
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "info":
            ans = {
                "threads": torch.get_num_threads(),
                "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
                "wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                "torch": torch.__version__,
            }
            if "config" in cmd:
                m = Llama(cmd["config"])
                ans["params"] = sum(p.numel() for n, p in m.named_parameters() if "lora_" not in n)
                ans["trained"] = sum(p.numel() for p in m.parameters() if p.requires_grad)
        elif op == "sgemm":
            ans = {"values": sgemm(cmd["n"], cmd["reps"])}
        elif op == "train":
            c = cmd["config"]
            if trainer is None or trainer[0] != c:
                trainer = None
                gc.collect()
                trainer = (c, Trainer(c))
            vals = []
            for _ in range(cmd["reps"]):
                t0 = time.perf_counter()
                trainer[1].step()
                vals.append((time.perf_counter() - t0) * 1e3)
            ans = {"values": vals}
        elif op == "sample":
            c = cmd["config"]
            if sampler is None or sampler[0] != c:
                sampler = None
                gc.collect()
                torch.manual_seed(2)
                sampler = (c, Llama(c).eval())
            vals = []
            M = cmd.get("maxNew", c["maxNew"])
            for r in range(cmd["reps"]):
                t0 = time.perf_counter()
                sample(sampler[1], c, r, M)
                vals.append(c["streams"] * M / (time.perf_counter() - t0))
            ans = {"values": vals}
        elif op == "reset":
            trainer, sampler = None, None
            gc.collect()
            ans = {}
        else:
            ans = {"error": f"unknown op {op}"}
        sys.stdout.write(json.dumps(ans) + "\n")
        sys.stdout.flush()


def rss(job):
    trainer = Trainer(job["config"])
    for _ in range(job["steps"]):
        trainer.step()
    # ru_maxrss is in KiB on Linux
    print(json.dumps({"maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    threads = 1
    if "--threads" in sys.argv:
        threads = int(sys.argv[sys.argv.index("--threads") + 1])
    torch.set_num_threads(threads)
    if "serve" in sys.argv:
        serve()
    elif "rss" in sys.argv:
        rss(json.loads(sys.argv[sys.argv.index("rss") + 1]))
