// `nrt grad` (SPEC §6) against the independent PyTorch oracle dev/ref/nrt_grad_ref.py (float64, autograd):
// loss, R, R', A, c, b and every gradient tensor, for each method preset of SPEC §5 and the other table entries
// (ws_inv, token_weight derived, the clip baseline under each aggregation, defaults, K = 1), on random small
// models (GQA + tied, untied MHA, Mistral sliding window + GQA, Llama with llama3 RoPE scaling, Qwen2 biases,
// Qwen3 q/k norm).
//
// Tolerances. nrt computes in float32 and is compared with the float64 oracle; the oracle's own float32 mode
// (columns "ref32" of the table printed at the end) shows the rounding floor of an honest float32 implementation.
// Measured on these cases: gradients differ by ≤ 4e-6 of each tensor's max |g| (ref32: ≤ 3e-6), A by ≤ 4e-6 of
// the batch's max |A|, c and b by ~1e-7 relative, the loss by ≤ 5e-6 absolute (ref32: ≤ 8e-6; it is a signed sum
// of ~100 terms of size up to ~5, so its error is absolute, not relative to a loss that may be near 0).
// Allowed: gradients atol 1e-4 × max|g| of the tensor + rtol 1e-3; R and R' atol 1e-4 × the batch's max |R| (R' =
// R − f(b) inherits R's absolute error); A atol 1e-4 × the batch's max |A|; c, b rtol 1e-4; loss 1e-4 + 1e-5 ×
// |loss|. That is 25-100x the float32 floor, while the negative controls (a wrong aggregation, no format term, the
// wrong advantage or token weight) miss by 2e-1 to 1e+0 of the scale, i.e. 2000x the tolerance or more.
//
// Two cases check SPEC §3's "A = 0" where the rewards are equal in exact arithmetic (IDENTICAL, NOISE_WINNER
// below), which float32 noise would break; see the comment there.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelConfig } from "../../src/model/config.js";
import { expectAllclose, maxDiff } from "../helpers/allclose.js";
import {
  type Batch,
  ensureBuilt,
  ensurePython,
  makeBatch,
  type Output,
  readOutput,
  runNrtGrad,
  runReference,
  writeModel,
} from "./_harness.js";

const MODELS: Record<string, Partial<ModelConfig>> = {
  "gqa-tied": { numHeads: 4, numKvHeads: 2, tied: true },
  untied: { numHeads: 2, numKvHeads: 2, numLayers: 1, ropeTheta: 500 },
  "mistral-w3": { modelType: "mistral", slidingWindow: 3, numHeads: 4, numKvHeads: 1, headDim: 6 },
  "llama3-rope": {
    numHeads: 2,
    numKvHeads: 2,
    ropeScaling: {
      type: "llama3",
      factor: 8,
      lowFreqFactor: 2,
      highFreqFactor: 16,
      originalMaxPositionEmbeddings: 512,
    },
  },
  qwen2: { modelType: "qwen2", numHeads: 4, numKvHeads: 2, tied: true },
  qwen3: { modelType: "qwen3", numHeads: 4, numKvHeads: 2, headDim: 6 },
};
/** models whose directory stores bfloat16 tensors (read by nrt and by the oracle from the same file) */
const BF16 = new Set(["llama3-rope-bf16", "qwen2-bf16", "qwen3-bf16"]);
MODELS["llama3-rope-bf16"] = { ...MODELS["llama3-rope"], tied: true };
MODELS["qwen2-bf16"] = { ...MODELS.qwen2, tied: false };
MODELS["qwen3-bf16"] = { ...MODELS.qwen3, tied: true };

interface Case {
  name: string;
  model: keyof typeof MODELS;
  config: Record<string, unknown>;
  G: number;
  K: number;
  /** true when every A must be 0 (K = 1) */
  zeroA?: boolean;
  /** the batch's seed (default 500 + its index) */
  seed?: number;
  /** groups of different sizes: group g keeps its first Ks[g] traces (SPEC §4: each trace still weighs 1/N) */
  Ks?: number[];
}

const preset = (aggregation: string, baseline: string, advantage: string, token_weight: string) => ({
  aggregation,
  baseline,
  advantage,
  token_weight,
});

const CASES: Case[] = [
  // SPEC §5 presets
  { name: "nrt-ws", model: "gqa-tied", config: preset("ws_nlog", "none", "group_std", "fixed"), G: 3, K: 4 },
  { name: "nrt-gm", model: "untied", config: preset("gm", "none", "group_std", "fixed"), G: 3, K: 3 },
  { name: "rlpr", model: "gqa-tied", config: preset("am", "clip", "group_std", "none"), G: 3, K: 4 },
  { name: "verifree", model: "untied", config: preset("prob", "none", "rloo", "reward"), G: 3, K: 4 },
  { name: "jlb", model: "gqa-tied", config: preset("logp", "none", "loo_mean", "fixed"), G: 2, K: 3 },
  { name: "sft tied", model: "gqa-tied", config: { method: "sft" }, G: 3, K: 3 },
  { name: "sft untied", model: "untied", config: { method: "sft" }, G: 2, K: 4 },
  // ws_inv, derived token weights, other settings
  { name: "nrt-ws(1/p)", model: "untied", config: preset("ws_inv", "none", "group_std", "fixed"), G: 3, K: 3 },
  {
    name: "ws_nlog derived λ=0.7",
    model: "gqa-tied",
    config: { ...preset("ws_nlog", "none", "group_std", "derived"), format_coef: 0.7 },
    G: 3,
    K: 4,
  },
  { name: "gm derived rloo", model: "untied", config: preset("gm", "none", "rloo", "derived"), G: 3, K: 3 },
  {
    name: "am derived loo_mean λ=1",
    model: "mistral-w3",
    config: { ...preset("am", "none", "loo_mean", "derived"), format_coef: 1 },
    G: 3,
    K: 4,
  },
  { name: "ws_inv derived", model: "mistral-w3", config: preset("ws_inv", "none", "group_std", "derived"), G: 2, K: 4 },
  { name: "prob derived", model: "gqa-tied", config: preset("prob", "none", "group_std", "derived"), G: 3, K: 3 },
  // clip under the other aggregations
  { name: "ws_nlog clip", model: "untied", config: preset("ws_nlog", "clip", "group_std", "fixed"), G: 3, K: 4 },
  { name: "gm clip", model: "gqa-tied", config: preset("gm", "clip", "rloo", "fixed"), G: 3, K: 4 },
  { name: "ws_inv clip", model: "mistral-w3", config: preset("ws_inv", "clip", "group_std", "none"), G: 3, K: 4 },
  {
    name: "logp clip λ=0",
    model: "gqa-tied",
    config: { ...preset("logp", "clip", "rloo", "fixed"), format_coef: 0 },
    G: 3,
    K: 5,
  },
  { name: "prob clip derived", model: "gqa-tied", config: preset("prob", "clip", "loo_mean", "derived"), G: 3, K: 4 },
  // the families (SPEC §6): RoPE scaling, q/k/v biases, q/k norm
  {
    name: "nrt-ws llama3 rope",
    model: "llama3-rope",
    config: preset("ws_nlog", "none", "group_std", "fixed"),
    G: 3,
    K: 3,
  },
  { name: "nrt-ws qwen2", model: "qwen2", config: preset("ws_nlog", "none", "group_std", "fixed"), G: 3, K: 3 },
  { name: "rlpr qwen2", model: "qwen2", config: preset("am", "clip", "group_std", "none"), G: 3, K: 4 },
  { name: "nrt-gm qwen3", model: "qwen3", config: preset("gm", "none", "group_std", "fixed"), G: 3, K: 3 },
  { name: "sft qwen3", model: "qwen3", config: { method: "sft" }, G: 2, K: 3 },
  {
    name: "nrt-ws llama3 bf16",
    model: "llama3-rope-bf16",
    config: preset("ws_nlog", "none", "group_std", "fixed"),
    G: 3,
    K: 3,
  },
  {
    name: "nrt-ws qwen2 bf16",
    model: "qwen2-bf16",
    config: preset("ws_nlog", "none", "group_std", "fixed"),
    G: 3,
    K: 3,
  },
  {
    name: "nrt-ws qwen3 bf16",
    model: "qwen3-bf16",
    config: preset("ws_nlog", "none", "group_std", "fixed"),
    G: 3,
    K: 3,
  },
  // defaults of §4 for missing keys, and K = 1
  { name: "defaults {}", model: "mistral-w3", config: {}, G: 3, K: 3 },
  { name: "K=1", model: "gqa-tied", config: preset("ws_nlog", "none", "group_std", "fixed"), G: 3, K: 1, zeroA: true },
  // groups of different sizes (an `nrt grad` batch may have them): L = (1/N) Σ_g Σ_k L_{g,k}, N = Σ_g K_g
  {
    name: "groups of 2, 5 and 3 traces",
    model: "untied",
    config: preset("ws_nlog", "none", "group_std", "fixed"),
    G: 3,
    K: 5,
    Ks: [2, 5, 3],
  },
];

/** Negative controls: the oracle on a changed config must NOT match nrt's output on the original. */
const CONTROLS: { of: string; change: Record<string, unknown>; what: string }[] = [
  { of: "nrt-ws", change: { aggregation: "ws_inv" }, what: "ws_inv instead of ws_nlog" },
  { of: "nrt-ws", change: { format_coef: 0 }, what: "no format term" },
  { of: "jlb", change: { advantage: "group_std" }, what: "group_std instead of loo_mean" },
  { of: "ws_nlog derived λ=0.7", change: { token_weight: "fixed" }, what: "fixed instead of derived" },
];

/**
 * Float-noise cases: SPEC §3 gives every A_k = 0 here in exact arithmetic. The engine's float32 log-probabilities
 * depend on where a sequence sits in the packed batch (the same sequence packed twice differs in the last bits), so
 * if equal sequences were scored apart, equal rewards would differ by ~1e-8, above group_std's 1e-12 threshold
 * (IDENTICAL), and an empty trace's c would differ from b, making max(0, R − f(b)) ~1e-8 instead of 0
 * (NOISE_WINNER); group_std would scale that noise to ±0.5…1.5, and in NOISE_WINNER the loss and gradient would be
 * wrong too. nrt passes them because packNrtBatch (src/train/nrt-batch.ts) packs each distinct sequence of a group
 * once, the empty trace included, so equal traces get bit-equal rewards.
 * IDENTICAL: group 0's K traces are one trace repeated, so the R'_k are equal and group_std's std is 0.
 * NOISE_WINNER: RLPR (am, clip, group_std) where, in group 0, no trace beats the empty trace: every
 * R'_k = max(0, R_k − f(b)) is 0, the empty trace's (k = 1) because its sequence is the empty-trace sequence (c = b).
 */
const IDENTICAL = "identical traces in group 0 (group_std → A = 0)";
const NOISE_WINNER = "rlpr, no trace beats the empty one in group 0 (A = 0)";

let dir = "";
const batches = new Map<string, Batch>();
const nrt = new Map<string, Output>();
const ref = new Map<string, Output>();
const ref32 = new Map<string, Output>();
const controls = new Map<string, Output>();
const report: Record<string, Record<string, string>> = {};

function batchFor(c: Case, i: number, vocab: number): Batch {
  const b = makeBatch(c.config, c.G, c.K, vocab, c.seed ?? 500 + i);
  for (const [j, g] of b.groups.entries()) if (c.Ks) g.traces.splice(c.Ks[j]);
  if (c.name === IDENTICAL) {
    const g = b.groups[0];
    g.traces = g.traces.map(() => ({ tokens: [...g.traces[0].tokens], emitted: g.traces[0].emitted }));
  }
  return b;
}

const ALL: Case[] = [
  ...CASES,
  { name: IDENTICAL, model: "gqa-tied", config: preset("ws_nlog", "none", "group_std", "fixed"), G: 2, K: 4 },
  { name: NOISE_WINNER, model: "mistral-w3", config: preset("am", "clip", "group_std", "none"), G: 3, K: 4, seed: 501 },
];

beforeAll(() => {
  ensurePython();
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), "nrt-grad-parity-"));
  const vocab = new Map<string, number>();
  for (const [i, [name, over]] of Object.entries(MODELS).entries())
    vocab.set(name, writeModel(join(dir, name), over, 11 + i, BF16.has(name)).vocabSize);
  const jobs64: { model: string; batch: string; out: string }[] = [];
  const jobs32: typeof jobs64 = [];
  for (const [i, c] of ALL.entries()) {
    const batch = batchFor(c, i, vocab.get(c.model)!);
    batches.set(c.name, batch);
    const file = join(dir, `batch-${i}.json`);
    const model = join(dir, c.model);
    writeFileSync(file, JSON.stringify(batch));
    runNrtGrad(model, file, join(dir, `nrt-${i}`));
    jobs64.push({ model, batch: file, out: join(dir, `ref-${i}`) });
    jobs32.push({ model, batch: file, out: join(dir, `ref32-${i}`) });
  }
  for (const [j, k] of CONTROLS.entries()) {
    const c = ALL.find((x) => x.name === k.of)!;
    const b = batches.get(k.of)!;
    const file = join(dir, `control-${j}.json`);
    writeFileSync(file, JSON.stringify({ ...b, config: { ...b.config, ...k.change } }));
    jobs64.push({ model: join(dir, c.model), batch: file, out: join(dir, `control-${j}`) });
  }
  runReference(jobs64, dir, "float64");
  runReference(jobs32, dir, "float32");
  for (const [i, c] of ALL.entries()) {
    nrt.set(c.name, readOutput(join(dir, `nrt-${i}`)));
    ref.set(c.name, readOutput(join(dir, `ref-${i}`)));
    ref32.set(c.name, readOutput(join(dir, `ref32-${i}`)));
  }
  for (const [j, k] of CONTROLS.entries()) controls.set(k.what, readOutput(join(dir, `control-${j}`)));
});

afterAll(() => {
  if (Object.keys(report).length > 0) console.table(report);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const maxAbs = (x: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
};

/** Largest |a − b| / max|b| over the gradient tensors (b's names; a missing tensor counts as Infinity). */
function gradExcess(a: Output, b: Output): number {
  let worst = 0;
  for (const [name, g] of b.grads) {
    const x = a.grads.get(name);
    worst = Math.max(worst, x ? maxDiff(x, g).diff / Math.max(maxAbs(g), 1e-30) : Number.POSITIVE_INFINITY);
  }
  return worst;
}

/** Largest |a − b| over the A of all groups, over the largest |A| of b. */
function advantageExcess(a: Output, b: Output): number {
  const scale = Math.max(...b.groups.flatMap((g) => g.A.map(Math.abs)), 1e-300);
  return Math.max(0, ...b.groups.map((g, i) => maxDiff(a.groups[i]?.A ?? [], g.A).diff)) / scale;
}

/** Relative atol: 1e-4 of the reference's scale (see the tolerance note at the top). */
const TOL = 1e-4;

function compare(c: Case, got: Output, want: Output): void {
  const where = `${c.name}:`;
  expect(Math.abs(got.loss - want.loss), `${where} loss ${got.loss} vs ${want.loss}`).toBeLessThanOrEqual(
    1e-5 * Math.abs(want.loss) + 1e-4,
  );
  expect([...got.grads.keys()].sort(), `${where} gradient tensor names`).toEqual([...want.grads.keys()].sort());
  for (const [name, g] of want.grads)
    expectAllclose(got.grads.get(name)!, g, { atol: TOL * maxAbs(g) + 1e-12, rtol: 1e-3, what: `${where} ${name}` });
  if (c.config.method === "sft") return; // stats of an SFT batch: see the SFT test below
  expect(got.groups.length, `${where} number of groups`).toBe(want.groups.length);
  // R' = R − f(b) inherits R's absolute error, and an error in A matters relative to the other A of the batch
  const scaleR = maxAbs(want.groups.flatMap((g) => g.R));
  const scaleA = maxAbs(want.groups.flatMap((g) => g.A));
  want.groups.forEach((w, g) => {
    const o = got.groups[g];
    const at = `${where} groups[${g}]`;
    for (const [key, scale] of [
      ["R", scaleR],
      ["R_prime", scaleR],
      ["A", scaleA],
    ] as const)
      expectAllclose(o[key], w[key], { atol: TOL * scale + 1e-12, rtol: 1e-3, what: `${at}.${key}` });
    expectAllclose(o.b, w.b, { atol: 1e-9, rtol: 1e-4, what: `${at}.b` });
    expect(o.c.length, `${at}.c length`).toBe(w.c.length);
    for (const [k, row] of w.c.entries())
      expectAllclose(o.c[k], row, { atol: 1e-9, rtol: 1e-4, what: `${at}.c[${k}]` });
  });
}

describe("nrt grad matches the PyTorch oracle (float64)", () => {
  for (const c of ALL) {
    it(`${c.name} (${c.model}, G=${c.G}, K=${c.K})`, () => {
      const got = nrt.get(c.name)!;
      const want = ref.get(c.name)!;
      const want32 = ref32.get(c.name)!;
      report[c.name] = {
        loss: want.loss.toPrecision(4),
        "loss |Δ|": Math.abs(got.loss - want.loss).toExponential(1),
        "grad |Δ|/scale": gradExcess(got, want).toExponential(1),
        "A |Δ|/scale": c.config.method === "sft" ? "-" : advantageExcess(got, want).toExponential(1),
        "ref32 loss": Math.abs(want32.loss - want.loss).toExponential(1),
        "ref32 grad": gradExcess(want32, want).toExponential(1),
        "ref32 A": c.config.method === "sft" ? "-" : advantageExcess(want32, want).toExponential(1),
      };
      compare(c, got, want);
    });
  }
});

describe("the cases are not trivial", () => {
  it("rewards differ within groups, so advantages are non-zero (except with K = 1)", () => {
    for (const c of CASES) {
      if (c.config.method === "sft") continue;
      const { groups } = ref.get(c.name)!;
      const A = groups.flatMap((g) => g.A);
      if (c.zeroA) {
        expect(
          A.every((a) => a === 0),
          `${c.name}: A`,
        ).toBe(true);
        continue;
      }
      // at least two groups whose R' spread is ≥ 1% of their scale, and so have non-zero advantages
      const live = groups.filter((g) => {
        const spread = Math.max(...g.R_prime) - Math.min(...g.R_prime);
        return spread > 0.01 * maxAbs(g.R_prime) && maxAbs(g.A) > 0;
      });
      expect(live.length, `${c.name}: groups with spread-out rewards`).toBeGreaterThanOrEqual(2);
    }
  });

  it("the SPEC §6 layout is exercised: empty and truncated traces, T = 1; the empty trace has c = b", () => {
    const b = batches.get("nrt-ws")!;
    expect(b.groups.some((g) => g.traces.some((t) => t.tokens.length === 0))).toBe(true);
    expect(b.groups.some((g) => g.traces.some((t) => !t.emitted))).toBe(true);
    expect(b.groups.some((g) => g.answer.length === 1)).toBe(true);
    const r = ref.get("nrt-ws")!;
    for (const [i, g] of b.groups.entries())
      for (const [k, t] of g.traces.entries())
        if (t.tokens.length === 0) expectAllclose(r.groups[i].c[k], r.groups[i].b, { atol: 0, rtol: 1e-12 });
  });

  it("negative controls: the oracle with a changed setting misses nrt by far more than the tolerance", () => {
    for (const k of CONTROLS) {
      const excess = gradExcess(nrt.get(k.of)!, controls.get(k.what)!);
      report[`control: ${k.what}`] = { "grad |Δ|/scale": excess.toExponential(1) };
      expect(excess, k.what).toBeGreaterThan(100 * TOL);
    }
  });

  it("oracle self-check: loo_mean gives the numbers of rloo (SPEC §3)", () => {
    for (const name of ["jlb", "am derived loo_mean λ=1", "prob clip derived"]) {
      for (const g of ref.get(name)!.groups) {
        const K = g.R_prime.length;
        const mean = g.R_prime.reduce((a, b) => a + b, 0) / K;
        const rloo = g.R_prime.map((r) => ((r - mean) * K) / (K - 1));
        expectAllclose(g.A, rloo, { atol: 1e-12 * maxAbs(rloo), rtol: 1e-9, what: `${name}: loo_mean = rloo` });
      }
    }
  });
});
