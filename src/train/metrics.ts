import { addLossTerms, type LossTerms, sequenceOffsets } from "../nrt/weights.js";
import type { Trace } from "../rollout/rollout.js";
import type { ScoredBatch } from "./nrt-batch.js";

/** One step's metrics, namespaced with "/" (one JSONL line per step). Keys under time/ or ending in _per_s are timing. */
export type Metrics = Record<string, number>;

const mean = (a: readonly number[]): number => (a.length ? a.reduce((s, x) => s + x, 0) / a.length : 0);
const std = (a: readonly number[]): number => {
  if (a.length < 2) return 0;
  const m = mean(a);
  return Math.sqrt(a.reduce((s, x) => s + (x - m) ** 2, 0) / (a.length - 1));
};

/** Rollout and reward metrics of an NRT step (SPEC §3 quantities, trace statistics, answer NLLs). */
export function nrtMetrics(traces: readonly Trace[][], b: ScoredBatch): Metrics {
  const all = traces.flat();
  const lens = all.map((t) => t.tokens.length);
  const R = b.scores.flatMap((s) => s.R);
  const Rp = b.scores.flatMap((s) => s.Rprime);
  const A = b.scores.flatMap((s) => s.A);
  const zeroStd = b.scores.filter((s) => std(s.Rprime) <= 1e-12).length / b.scores.length;
  const traceEnt = all.flatMap((t) => t.entropy);
  const nllTrace = b.logc.flatMap((g) => g.map((row) => -mean(row)));
  const nllEmpty = b.logb.map((row) => -mean(row));
  const c = b.logc.flatMap((g) => g.flatMap((row) => row.map(Math.exp)));
  const bb = b.logb.flatMap((row) => row.map(Math.exp));
  return {
    "reward/mean": mean(R),
    "reward/std": std(R),
    "reward/prime_mean": mean(Rp),
    "reward/prime_std": std(Rp),
    "adv/mean": mean(A),
    "adv/std": std(A),
    "adv/zero_std_frac": zeroStd,
    "trace/len_mean": mean(lens),
    "trace/len_min": Math.min(...lens),
    "trace/len_max": Math.max(...lens),
    "trace/rate": all.filter((t) => t.tokens.length > 0).length / all.length,
    "trace/truncated_rate": all.filter((t) => t.truncated).length / all.length,
    "trace/emitted_rate": all.filter((t) => t.emitted).length / all.length,
    "trace/entropy": mean(traceEnt),
    "answer/nll_trace": mean(nllTrace),
    "answer/nll_empty": mean(nllEmpty),
    "answer/c_mean": mean(c),
    "answer/b_mean": mean(bb),
  };
}

/**
 * The gap between the sampler's and the learner's log-probabilities of the same trace tokens: mean and largest
 * |log π_sampler(z_t) − log π_learner(z_t)| over every trace token of the step. In process it is float32 noise; with
 * a sampling server it shows precision (bf16), kernels, and above all a sampler that missed a weight update.
 */
export function samplerGap(traces: readonly Trace[][], b: ScoredBatch): Metrics {
  const lp = b.forward.logprobs;
  let sum = 0;
  let max = 0;
  let n = 0;
  for (const s of b.spans) {
    const t = traces[s.group][s.k];
    const a = s.start + sequenceOffsets(s).trace;
    for (let j = 0; j < s.traceLen; j++) {
      const d = Math.abs(t.logprobs[j] - lp[a + j]);
      sum += d;
      if (!(d <= max)) max = d; // NaN propagates
      n++;
    }
  }
  return n ? { "sampler/logprob_gap": sum / n, "sampler/logprob_gap_max": max } : {};
}

/** The three terms of SPEC §4's loss (each already divided by G·K), from the loss weights' own coefficients. */
export function lossTerms(b: ScoredBatch): Metrics {
  const sum: LossTerms = { trace: 0, answer: 0, format: 0 };
  for (const s of b.spans) addLossTerms(sum, s, b.scores[s.group], s.k, s.norm, b.forward.logprobs, s.start);
  return { "loss/trace": sum.trace, "loss/answer": sum.answer, "loss/format": sum.format };
}

export { mean, std };
