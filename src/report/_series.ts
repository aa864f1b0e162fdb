import type { MetricsRow, RunData } from "./_read-run.js";

/** One line of a chart: a metrics key and its legend label. */
export interface SeriesKey {
  key: string;
  label: string;
}

/** A chart of the report: the metrics it overlays (for every run) and how to draw them. */
export interface ChartSpec {
  id: string;
  title: string;
  keys: SeriesKey[];
  /** a fixed y range (rates) */
  range?: [number, number];
  note?: string;
}

const k = (key: string, label = key): SeriesKey => ({ key, label });

/** The training curves, in page order. A chart that no run logs is left out (SFT runs log only loss and below). */
export const CHARTS: readonly ChartSpec[] = [
  { id: "reward", title: "Reward", keys: [k("reward/mean", "R"), k("reward/prime_mean", "R′ (after baseline)")] },
  { id: "trace-len", title: "Trace length (tokens)", keys: [k("trace/len_mean", "mean length")] },
  {
    id: "trace-rate",
    title: "Trace rate",
    keys: [k("trace/rate", "non-empty"), k("trace/emitted_rate", "ended by ⟨answer_start⟩")],
    range: [0, 1],
  },
  {
    id: "rates",
    title: "Truncation and zero-variance rates",
    keys: [k("trace/truncated_rate", "truncated traces"), k("adv/zero_std_frac", "zero-variance groups")],
    range: [0, 1],
    note: "an alarm fires above 0.5",
  },
  { id: "entropy", title: "Trace entropy (nats/token)", keys: [k("trace/entropy", "entropy")] },
  {
    id: "answer-nll",
    title: "Answer NLL (nats/token)",
    keys: [k("answer/nll_trace", "after trace"), k("answer/nll_empty", "empty trace")],
    note: "the trace helps where “after trace” is below “empty trace”",
  },
  {
    id: "answer-p",
    title: "Answer token probability",
    keys: [k("answer/c_mean", "c (after trace)"), k("answer/b_mean", "b (no trace)")],
    range: [0, 1],
  },
  { id: "loss", title: "Loss", keys: [k("loss", "loss")] },
  {
    id: "loss-terms",
    title: "Loss terms",
    keys: [k("loss/trace", "trace"), k("loss/answer", "answer"), k("loss/format", "format")],
  },
  { id: "grad-norm", title: "Gradient norm (before clipping)", keys: [k("grad_norm", "grad norm")] },
  { id: "lr", title: "Learning rate", keys: [k("lr", "lr")] },
  { id: "throughput", title: "Throughput (tokens/s)", keys: [k("tokens_per_s", "tokens/s")] },
];

/** Columns of the final-metrics table. */
export const FINAL_KEYS: readonly SeriesKey[] = [
  k("reward/mean", "R"),
  k("trace/len_mean", "trace len"),
  k("trace/rate", "trace rate"),
  k("trace/truncated_rate", "truncated"),
  k("adv/zero_std_frac", "zero-var"),
  k("trace/entropy", "entropy"),
  k("answer/nll_trace", "NLL trace"),
  k("answer/nll_empty", "NLL empty"),
  k("loss", "loss"),
  k("grad_norm", "grad norm"),
  k("tokens_per_s", "tok/s"),
];

/** Line dashes of a chart's 1st, 2nd, 3rd… key (the run sets the colour). */
export const DASHES: readonly number[][] = [[], [6, 4], [2, 3], [8, 3, 2, 3]];

/** What the page draws for one chart: x shared by all lines, each line aligned to x with null where absent. */
export interface ChartData {
  id: string;
  title: string;
  note?: string;
  range?: [number, number];
  xLabel: string;
  /** whether the page's EMA smoothing applies */
  smooth: boolean;
  x: number[];
  series: { run: number; label: string; dash: number[]; values: (number | null)[] }[];
}

/** The steps at which `key` was logged, and its values there. */
export function seriesOf(rows: readonly MetricsRow[], key: string): { x: number[]; y: number[] } {
  const x: number[] = [];
  const y: number[] = [];
  for (const r of rows)
    if (r[key] !== undefined) {
      x.push(r.step);
      y.push(r[key]);
    }
  return { x, y };
}

/** Aligns series to the sorted union of their x values (uPlot's data layout), with null where a series has no value. */
export function alignSeries(list: readonly { x: number[]; y: number[] }[]): { x: number[]; ys: (number | null)[][] } {
  const x = [...new Set(list.flatMap((s) => s.x))].sort((a, b) => a - b);
  const at = new Map(x.map((v, i) => [v, i]));
  const ys = list.map((s) => {
    const out = new Array<number | null>(x.length).fill(null);
    s.x.forEach((xi, j) => {
      out[at.get(xi)!] = s.y[j];
    });
    return out;
  });
  return { x, ys };
}

/** The chart of `spec` over all runs, or null when no run logs any of its keys. */
export function chartData(runs: readonly RunData[], spec: ChartSpec): ChartData | null {
  const lines: { run: number; label: string; dash: number[]; s: { x: number[]; y: number[] } }[] = [];
  runs.forEach((r, ri) => {
    spec.keys.forEach((sk, ki) => {
      const s = seriesOf(r.metrics, sk.key);
      if (s.x.length > 0) lines.push({ run: ri, label: `${r.name} · ${sk.label}`, dash: DASHES[ki % 4], s });
    });
  });
  if (lines.length === 0) return null;
  const { x, ys } = alignSeries(lines.map((l) => l.s));
  return {
    id: spec.id,
    title: spec.title,
    ...(spec.note !== undefined && { note: spec.note }),
    ...(spec.range && { range: spec.range }),
    xLabel: "step",
    smooth: true,
    x,
    series: lines.map((l, i) => ({ run: l.run, label: l.label, dash: l.dash, values: ys[i] })),
  };
}

/** Accuracy against k (number of variables) from the runs' eval.json `by_k`: with a greedy trace and with none. */
export function accuracyChart(runs: readonly RunData[]): ChartData | null {
  const keys = [k("accuracy", "trace"), k("accuracy_direct", "no trace")] as const;
  const lines: { run: number; label: string; dash: number[]; s: { x: number[]; y: number[] } }[] = [];
  runs.forEach((r, ri) => {
    const byK = Object.entries(r.eval?.by_k ?? {}).filter(([kk]) => /^\d+$/.test(kk));
    keys.forEach((sk, ki) => {
      const pts = byK.filter(([, m]) => typeof m[sk.key as "accuracy"] === "number");
      if (pts.length === 0) return;
      const s = { x: pts.map(([kk]) => Number(kk)), y: pts.map(([, m]) => m[sk.key as "accuracy"]!) };
      lines.push({ run: ri, label: `${r.name} · ${sk.label}`, dash: DASHES[ki], s });
    });
  });
  if (lines.length === 0) return null;
  const { x, ys } = alignSeries(lines.map((l) => l.s));
  return {
    id: "accuracy-by-k",
    title: "Eval accuracy by number of variables k",
    note: "from eval.json; greedy trace vs. no trace",
    range: [0, 1],
    xLabel: "k",
    smooth: false,
    x,
    series: lines.map((l, i) => ({ run: l.run, label: l.label, dash: l.dash, values: ys[i] })),
  };
}

/**
 * Debiased exponential moving average (TensorBoard's smoothing): s_t = w·s_{t−1} + (1−w)·v_t, shown as
 * s_t / (1 − w^n) after n values; nulls stay null and do not advance it. w = 0 returns the values.
 * Self-contained: the page runs this very function (via its source text).
 */
export function ema(values: readonly (number | null)[], w: number): (number | null)[] {
  let s = 0;
  let n = 0;
  return values.map((v) => {
    if (v === null) return null;
    s = w * s + (1 - w) * v;
    n++;
    return w === 0 ? v : s / (1 - w ** n);
  });
}

/** Mean of the last `last` logged values of `key` (steps are noisy), or null when the run never logged it. */
export function finalValue(rows: readonly MetricsRow[], key: string, last = 10): number | null {
  const ys = seriesOf(rows, key).y.slice(-last);
  return ys.length === 0 ? null : ys.reduce((a, b) => a + b, 0) / ys.length;
}
