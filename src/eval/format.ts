/** Human-readable tables of an evaluation (what `nrt eval` prints without --json). */
import type { EvalSample } from "./evaluate.js";
import type { EvalMetrics, EvalReport, HardTokenBin, QuestionResult } from "./metrics.js";

const pct = (x: number): string => (100 * x).toFixed(1);
const num = (x: number | null, digits = 3): string => (x === null ? "–" : x.toFixed(digits));

function table(header: string[], rows: string[][]): string {
  const w = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((x, c) => (c === 0 ? x.padEnd(w[c]) : x.padStart(w[c]))).join("  ");
  return [line(header), ...rows.map(line)].join("\n");
}

/**
 * The SPEC §7 metrics, one row per number of variables and one for all questions. Accuracies and the trace rate
 * in %, trace length in tokens, entropies in nats; `exact%` is the free run's exact string match (below `acc%`
 * only for chainlong, whose answers may be phrased differently from the reference).
 */
export function formatEvalTable(m: EvalReport): string {
  const row = (k: string, x: EvalMetrics): string[] => [
    k,
    String(x.n),
    pct(x.accuracy),
    pct(x.accuracy_sampled),
    pct(x.accuracy_direct),
    pct(x.accuracy_forced),
    pct(x.trace_rate),
    x.trace_len_mean.toFixed(1),
    num(x.trace_entropy),
    num(x.decision_entropy),
    pct(x.accuracy_exact),
  ];
  const header = [
    "k",
    "n",
    "acc%",
    "sampled%",
    "direct%",
    "forced%",
    "traced%",
    "len",
    "H_trace",
    "H_decide",
    "exact%",
  ];
  const rows = Object.entries(m.by_k).map(([k, x]) => row(k, x));
  return table(header, [...rows, row("all", m)]);
}

/**
 * The hard-token analysis: answer tokens binned by their probability with no trace, with the mean probability
 * before and after the model's own greedy trace ("reasoning raises the hard tokens").
 */
export function formatHardTokens(bins: HardTokenBin[]): string {
  const rows = bins.map((b) => [b.bin, String(b.count), num(b.mean_p_no_trace), num(b.mean_p_after_trace)]);
  return table(["p(no trace)", "tokens", "mean p no trace", "mean p after trace"], rows);
}

/** A few questions: the greedy trace and answer against the reference, and the other three ways of answering. */
export function formatSamples(samples: EvalSample[]): string {
  const q = (s: string) => JSON.stringify(s);
  const mark = (ok: boolean) => (ok ? "✓" : "✗");
  return samples
    .map((s) =>
      [
        `${s.question}  (k=${s.k ?? "?"}, reference ${q(s.reference)})`,
        `  free     trace ${q(s.trace)} → ${q(s.predicted)} ${mark(s.correct)}`,
        `  sampled  trace ${q(s.sampled_trace)} → ${q(s.sampled_predicted)} ${mark(s.sampled_correct)}`,
        `  direct   → ${q(s.direct_predicted)} ${mark(s.direct_correct)}`,
        `  forced   trace ${q(s.forced_trace)} → ${q(s.forced_predicted)} ${mark(s.forced_correct)}`,
      ].join("\n"),
    )
    .join("\n");
}

/**
 * `nrt eval --predictions`: one JSON line per question, in data order — the question, the reference, the free run's
 * trace and answer text, whether it was counted correct and whether it matched the reference exactly.
 */
export function predictionsJsonl(questions: readonly QuestionResult[]): string {
  return questions
    .map(
      (q) =>
        `${JSON.stringify({
          question: q.question,
          reference: q.answer,
          k: q.k,
          trace: q.free.traceText,
          answer: q.free.prediction,
          correct: q.free.correct,
          exact: q.free.exact,
        })}\n`,
    )
    .join("");
}
