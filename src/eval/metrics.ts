/**
 * The SPEC §7 evaluation metrics, as pure functions of per-question outcomes (see `evaluate.ts` for how the
 * outcomes are produced). Keys are the snake_case names `nrt eval --json` prints.
 */

/** How a generated trace ended. */
export type TraceEnd =
  /** the model wrote ⟨answer_start⟩ as its first special token (SPEC §2 `emitted`) */
  | "answer_start"
  /** the model wrote another special token (e.g. ⟨eos⟩); it is dropped and ⟨answer_start⟩ appended all the same */
  | "special"
  /** cut at the trace limit; ⟨answer_start⟩ appended */
  | "limit"
  /** no trace was generated: ⟨answer_start⟩ forced right after the prompt */
  | "none";

/** One way of answering a question: a trace, then ⟨answer_start⟩, then the greedy answer. */
export interface RunResult {
  /** trace token ids z, without the special token that ended the trace (forced tokens included) */
  trace: number[];
  traceText: string;
  end: TraceEnd;
  /** entropy (nats) of the model's distribution at each generated trace token (forced tokens have none) */
  traceEntropy: number[];
  /** the decoded greedy answer: the tokens before ⟨eos⟩ (or all of them when no ⟨eos⟩ came within the limit) */
  prediction: string;
  /** the answer ended on ⟨eos⟩ within the answer limit */
  eos: boolean;
  /**
   * `eos` and the prediction is right: equal to the reference exactly, or for a chainlong question (SPEC §7) the
   * same (variable, value) pairs in the same order in any of the four phrasings
   */
  correct: boolean;
  /** `eos` and `prediction` equals the reference answer exactly (what a string-matching verifier would see) */
  exact: boolean;
}

/** Everything measured on one question. */
export interface QuestionResult {
  question: string;
  /** the reference answer as the tokenizer writes it back (decode ∘ encode; for the char tokenizer, the record's) */
  answer: string;
  /** number of variables of a chain/chain2/chainlong question; null for any other question */
  k: number | null;
  /** greedy trace, greedy answer */
  free: RunResult;
  /** trace sampled at temperature 1, greedy answer */
  sampled: RunResult;
  /** ⟨answer_start⟩ right after the prompt, greedy answer */
  direct: RunResult;
  /** first trace token(s) forced to `b`, then greedy trace and answer */
  forced: RunResult;
  /** π(⟨answer_start⟩ | prompt) */
  pAnswerStart: number;
  /** per token of y* (⟨eos⟩ included): π(y*_i | x, ∅, y*_<i) — the empty-trace probabilities b_i of SPEC §2 */
  pNoTrace: number[];
  /** per token of y*: π(y*_i | x, z, y*_<i) after the greedy free-run trace z (equal to pNoTrace when z is empty) */
  pAfterTrace: number[];
  /** (1/T) Σ_i log π(y*_i | x, z, y*_<i) after the greedy free-run trace, and with no trace (log b) */
  answerLogprob: { trace: number; direct: number };
}

/** One bin of the hard-token analysis: answer tokens grouped by their probability without a trace. */
export interface HardTokenBin {
  /** e.g. "[0.1,0.3)"; the last bin is closed */
  bin: string;
  lo: number;
  hi: number;
  count: number;
  /** mean π(y*_i | no trace) over the bin; null for an empty bin */
  mean_p_no_trace: number | null;
  /** mean π(y*_i | greedy trace) over the bin; null for an empty bin */
  mean_p_after_trace: number | null;
}

/** The SPEC §7 metrics of a set of questions (plus the hard-token bins). */
export interface EvalMetrics {
  n: number;
  accuracy: number;
  /** exact string match of the free run's answer with the reference (equal to `accuracy` but for chainlong) */
  accuracy_exact: number;
  accuracy_sampled: number;
  accuracy_direct: number;
  accuracy_forced: number;
  trace_rate: number;
  trace_len_mean: number;
  trace_entropy: number;
  decision_entropy: number;
  /**
   * the reference answer's mean token log-probability (nats) after the greedy free-run trace, and with none: how
   * likely the model finds the right answer, on any data (no checker needed)
   */
  answer_logprob: number;
  answer_logprob_direct: number;
  hard_tokens: HardTokenBin[];
}

/** The metrics of all questions, and per number of variables. */
export interface EvalReport extends EvalMetrics {
  /** keyed by k as a string ("3", "4", …), in increasing k; questions that are not chain questions under "?" */
  by_k: Record<string, EvalMetrics>;
}

/** Bin edges of the hard-token analysis: [0,0.1) [0.1,0.3) [0.3,0.6) [0.6,0.9) [0.9,1]. */
export const HARD_TOKEN_EDGES = [0, 0.1, 0.3, 0.6, 0.9, 1] as const;

/** The by_k key of questions that are not chain/chain2 questions. */
export const OTHER_K = "?";

/** h(p) = −p ln p − (1−p) ln(1−p), in nats, from ln p (accurate near p = 1); 0 at p ∈ {0, 1}. */
export function binaryEntropy(logp: number): number {
  const p = Math.exp(logp);
  if (logp >= 0 || p === 0) return 0;
  const q = -Math.expm1(logp); // 1 − p
  return -p * logp - (q > 0 ? q * Math.log(q) : 0);
}

const mean = (xs: number[]): number => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
const rate = (qs: QuestionResult[], f: (q: QuestionResult) => boolean): number => mean(qs.map((q) => (f(q) ? 1 : 0)));

/**
 * Bins answer tokens by p_no_trace over HARD_TOKEN_EDGES and averages both probabilities per bin ("reasoning
 * raises the hard tokens": in the low bins mean_p_after_trace > mean_p_no_trace).
 */
export function hardTokenBins(pNoTrace: readonly number[], pAfterTrace: readonly number[]): HardTokenBin[] {
  const E = HARD_TOKEN_EDGES;
  const bins = E.slice(0, -1).map((lo, i) => ({ lo, hi: E[i + 1], count: 0, sumB: 0, sumC: 0 }));
  pNoTrace.forEach((b, i) => {
    let j = bins.findIndex((x) => b < x.hi);
    if (j < 0) j = bins.length - 1; // p = 1 (and rounding above it) belongs to the closed last bin
    bins[j].count++;
    bins[j].sumB += b;
    bins[j].sumC += pAfterTrace[i];
  });
  return bins.map((x, i) => ({
    bin: `[${x.lo},${x.hi}${i === bins.length - 1 ? "]" : ")"}`,
    lo: x.lo,
    hi: x.hi,
    count: x.count,
    mean_p_no_trace: x.count ? x.sumB / x.count : null,
    mean_p_after_trace: x.count ? x.sumC / x.count : null,
  }));
}

/**
 * SPEC §7 over `qs`: accuracies are rates of correct answers (exact match; chainlong: the same values in any
 * phrasing), `accuracy_exact` the free run's exact-match rate; trace_rate = share of questions whose greedy free-run trace
 * is non-empty; trace_len_mean = mean |z| over all questions (0 for no trace); trace_entropy = mean entropy over
 * all greedy free-run trace tokens pooled (0 when there are none); decision_entropy = mean over questions of
 * h(π(⟨answer_start⟩ | prompt)); answer_logprob(_direct) = mean over questions of the reference's mean token
 * log-probability after the greedy trace (with no trace).
 */
export function summarize(qs: QuestionResult[]): EvalMetrics {
  const ent = qs.flatMap((q) => q.free.traceEntropy);
  return {
    n: qs.length,
    accuracy: rate(qs, (q) => q.free.correct),
    accuracy_exact: rate(qs, (q) => q.free.exact),
    accuracy_sampled: rate(qs, (q) => q.sampled.correct),
    accuracy_direct: rate(qs, (q) => q.direct.correct),
    accuracy_forced: rate(qs, (q) => q.forced.correct),
    trace_rate: rate(qs, (q) => q.free.trace.length > 0),
    trace_len_mean: mean(qs.map((q) => q.free.trace.length)),
    trace_entropy: mean(ent),
    decision_entropy: mean(qs.map((q) => binaryEntropy(Math.log(q.pAnswerStart)))),
    answer_logprob: mean(qs.map((q) => q.answerLogprob.trace)),
    answer_logprob_direct: mean(qs.map((q) => q.answerLogprob.direct)),
    hard_tokens: hardTokenBins(
      qs.flatMap((q) => q.pNoTrace),
      qs.flatMap((q) => q.pAfterTrace),
    ),
  };
}

/** The metrics of all questions with `by_k`: groups by number of variables in increasing order, then "?". */
export function report(qs: QuestionResult[]): EvalReport {
  const groups = new Map<number | null, QuestionResult[]>();
  for (const q of qs) {
    const g = groups.get(q.k);
    if (g) g.push(q);
    else groups.set(q.k, [q]);
  }
  const keys = [...groups.keys()].sort((a, b) => (a ?? Number.POSITIVE_INFINITY) - (b ?? Number.POSITIVE_INFINITY));
  const by_k: Record<string, EvalMetrics> = {};
  for (const k of keys) by_k[k === null ? OTHER_K : String(k)] = summarize(groups.get(k)!);
  return { ...summarize(qs), by_k };
}
