import type { Metrics } from "./metrics.js";

/** A failure mode that TRL/verl users meet silently, checked every step (thresholds in the checks below). */
export interface Alarm {
  name: string;
  message: string;
}

/**
 * Checks one step's metrics, with the history of earlier steps, for: most traces truncated (no learning signal),
 * most groups with zero reward variance (zero gradient), trace entropy or length collapsing toward zero, and the
 * sampler's log-probabilities drifting from the learner's (a sampling server that missed a weight update).
 */
export function checkAlarms(m: Metrics, history: readonly Metrics[]): Alarm[] {
  const out: Alarm[] = [];
  if ((m["trace/truncated_rate"] ?? 0) > 0.5)
    out.push({ name: "truncation", message: `${pct(m["trace/truncated_rate"])} of traces hit the trace limit` });
  if ((m["adv/zero_std_frac"] ?? 0) > 0.5)
    out.push({
      name: "zero_variance",
      message: `${pct(m["adv/zero_std_frac"])} of groups have zero reward variance (no gradient)`,
    });
  const gap = m["sampler/logprob_gap"];
  const gap0 = history.find((h) => h["sampler/logprob_gap"] !== undefined)?.["sampler/logprob_gap"];
  if (gap !== undefined && gap0 !== undefined && !(gap <= Math.max(GAP_FLOOR, 3 * gap0)))
    out.push({
      name: "sampler_drift",
      message:
        `the sampler's log-probabilities of the traces differ from the learner's by ${gap.toFixed(4)} nats per token` +
        ` (first step: ${gap0.toFixed(4)}): is the sampling server reloading the weights?`,
    });
  const first = history.find((h) => (h["trace/len_mean"] ?? 0) > 0);
  if (first && history.length >= 10) {
    const len0 = first["trace/len_mean"];
    if ((m["trace/len_mean"] ?? 0) < 0.1 * len0)
      out.push({
        name: "length_collapse",
        message: `mean trace length fell to ${m["trace/len_mean"].toFixed(2)} from ${len0.toFixed(2)}`,
      });
    const ent0 = first["trace/entropy"] ?? 0;
    if (ent0 > 0 && m["trace/rate"] > 0 && (m["trace/entropy"] ?? 0) < 0.1 * ent0)
      out.push({
        name: "entropy_collapse",
        message: `trace entropy fell to ${m["trace/entropy"].toFixed(3)} from ${ent0.toFixed(3)}`,
      });
  }
  return out;
}

/** a sampler–learner gap (nats per token) below this never alarms: float32 noise, bf16 rounding on a GPU server */
const GAP_FLOOR = 0.05;

const pct = (x: number): string => `${Math.round(100 * x)}%`;
