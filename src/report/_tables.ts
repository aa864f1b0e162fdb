import type { RunData, SampleRow } from "./_read-run.js";
import { FINAL_KEYS, finalValue } from "./_series.js";

/** Text → HTML text (also safe inside attribute values). */
export const esc = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** A number for a table cell: 3 significant digits, integers from 1000 up, "–" for none. */
export function num(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–";
  if (Math.abs(x) >= 1000) return String(Math.round(x));
  return String(Number(x.toPrecision(3)));
}

const swatch = (color: string): string => `<span class="swatch" style="background:${esc(color)}"></span>`;

function table(head: string[], rows: string[][], cls = ""): string {
  const th = head.map((h) => `<th>${h}</th>`).join("");
  const tr = rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("\n");
  return `<table class="tbl ${cls}"><thead><tr>${th}</tr></thead>\n<tbody>\n${tr}\n</tbody></table>`;
}

/** Per run: method, steps logged (of those configured), and each FINAL_KEYS metric averaged over the last 10 steps. */
export function finalTable(runs: readonly RunData[], colors: readonly string[]): string {
  const cols = FINAL_KEYS.filter((c) => runs.some((r) => finalValue(r.metrics, c.key) !== null));
  const rows = runs.map((r, i) => {
    const last = r.metrics.at(-1)?.step ?? 0;
    const planned = typeof r.settings.steps === "number" ? ` / ${r.settings.steps}` : "";
    return [
      `${swatch(colors[i])}${esc(r.name)}`,
      esc(String(r.settings.method ?? "–")),
      `${last}${planned}`,
      ...cols.map((c) => num(finalValue(r.metrics, c.key))),
    ];
  });
  const head = ["run", "method", "steps", ...cols.map((c) => `<abbr title="${esc(c.key)}">${esc(c.label)}</abbr>`)];
  return table(head, rows, "num");
}

/** The eval.json numbers of the runs that have one; "" when none has. */
export function evalTable(runs: readonly RunData[], colors: readonly string[]): string {
  const keys = [
    "n",
    "accuracy",
    ...(runs.some((r) => r.eval?.accuracy_exact !== undefined) ? (["accuracy_exact"] as const) : []),
    "accuracy_sampled",
    "accuracy_direct",
    "accuracy_forced",
    "trace_rate",
    "trace_len_mean",
    "trace_entropy",
    "decision_entropy",
  ] as const;
  const rows = runs.flatMap((r, i) =>
    r.eval ? [[`${swatch(colors[i])}${esc(r.name)}`, ...keys.map((k) => num(r.eval![k]))]] : [],
  );
  return rows.length === 0 ? "" : table(["run", ...keys], rows, "num");
}

/**
 * Free accuracy by number of variables k per method, across runs: the runs of one method (its seeds) pooled as the
 * mean of their eval.json `by_k` accuracies, with the range over runs; exact-match accuracy beside it where a run
 * reports one that differs (chainlong). "" when no run has eval.json with `by_k`.
 */
export function accuracyByKTable(runs: readonly RunData[]): string {
  const withK = runs.filter((r) => r.eval?.by_k && Object.keys(r.eval.by_k).some((k) => /^\d+$/.test(k)));
  if (withK.length === 0) return "";
  const ks = [...new Set(withK.flatMap((r) => Object.keys(r.eval!.by_k!).filter((k) => /^\d+$/.test(k))))].sort(
    (a, b) => Number(a) - Number(b),
  );
  const methods = [...new Set(withK.map((r) => String(r.settings.method ?? r.name)))];
  const exact = withK.some((r) =>
    Object.values(r.eval!.by_k!).some((m) => m.accuracy_exact !== undefined && m.accuracy_exact !== m.accuracy),
  );
  const pct = (x: number) => (100 * x).toFixed(1);
  const cell = (xs: number[]) =>
    xs.length === 0
      ? "–"
      : xs.length === 1
        ? pct(xs[0])
        : `${pct(xs.reduce((a, b) => a + b, 0) / xs.length)} (${pct(Math.min(...xs))}–${pct(Math.max(...xs))})`;
  const rows = methods.map((m) => {
    const rs = withK.filter((r) => String(r.settings.method ?? r.name) === m);
    const at = (k: string, key: "accuracy" | "accuracy_exact") =>
      rs.flatMap((r) => {
        const v = r.eval!.by_k![k]?.[key];
        return typeof v === "number" ? [v] : [];
      });
    return [
      esc(m),
      String(rs.length),
      ...ks.flatMap((k) =>
        exact ? [cell(at(k, "accuracy")), cell(at(k, "accuracy_exact"))] : [cell(at(k, "accuracy"))],
      ),
    ];
  });
  const head = ["method", "runs", ...ks.flatMap((k) => (exact ? [`k=${k}`, `k=${k} exact`] : [`k=${k}`]))];
  return table(head, rows, "num");
}

const show = (v: unknown): string => esc(typeof v === "string" ? v : (JSON.stringify(v) ?? "–"));

/** Settings (run_config.json `train`) that differ between runs, and all settings under a fold. */
export function settingsTables(runs: readonly RunData[]): string {
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.settings)))];
  const differ = keys.filter((k) => k !== "out" && new Set(runs.map((r) => JSON.stringify(r.settings[k]))).size > 1);
  const rowsOf = (ks: string[]) => ks.map((k) => [esc(k), ...runs.map((r) => show(r.settings[k]))]);
  const head = ["setting", ...runs.map((r) => esc(r.name))];
  const parts: string[] = [];
  if (runs.length > 1)
    parts.push(differ.length > 0 ? table(head, rowsOf(differ)) : "<p>The runs have the same settings.</p>");
  if (keys.length > 0) parts.push(`<details><summary>All settings</summary>${table(head, rowsOf(keys))}</details>`);
  else parts.push("<p>No run_config.json.</p>");
  return parts.join("\n");
}

/** Alarms per run and name: how often, first and last step, the last message. */
export function alarmsTable(runs: readonly RunData[], colors: readonly string[]): string {
  const rows: string[][] = [];
  runs.forEach((r, i) => {
    const byName = new Map<string, typeof r.alarms>();
    for (const a of r.alarms) byName.set(a.name, [...(byName.get(a.name) ?? []), a]);
    for (const [name, as] of byName) {
      const last = as.at(-1)!;
      rows.push([
        `${swatch(colors[i])}${esc(r.name)}`,
        esc(name),
        String(as.length),
        String(as[0].step),
        String(last.step),
        esc(last.message),
      ]);
    }
  });
  if (rows.length === 0) return "<p>No alarms.</p>";
  return table(["run", "alarm", "times", "first step", "last step", "last message"], rows);
}

const pre = (s: string): string => `<pre>${esc(s)}</pre>`;

/** The samples.jsonl lines of the first and the last step logged, up to `max` each. */
export function pickSamples(samples: readonly SampleRow[], max: number): SampleRow[] {
  if (samples.length === 0 || max === 0) return [];
  const steps = [...new Set(samples.map((s) => s.step))].sort((a, b) => a - b);
  const chosen = steps.length === 1 ? steps : [steps[0], steps.at(-1)!];
  return chosen.flatMap((st) => samples.filter((s) => s.step === st).slice(0, max));
}

/** Sample traces per run: from training (samples.jsonl) and from evaluation (eval.json `samples`). */
export function samplesSection(runs: readonly RunData[], colors: readonly string[], max: number): string {
  const parts: string[] = [];
  runs.forEach((r, i) => {
    const train = pickSamples(r.samples, max);
    const ev = (r.eval?.samples ?? []).slice(0, max);
    if (train.length === 0 && ev.length === 0) return;
    parts.push(`<h3>${swatch(colors[i])}${esc(r.name)}</h3>`);
    if (train.length > 0) {
      const rows = train.map((s) => [
        String(s.step),
        pre(s.question),
        pre(s.trace),
        s.answer === undefined ? "–" : pre(s.answer),
        pre(s.reference),
        num(s.reward),
      ]);
      parts.push(table(["step", "question", "trace", "answer", "reference", "reward"], rows, "samples"));
    }
    if (ev.length > 0) {
      const rows = ev.map((s) => [
        pre(s.question),
        pre(s.trace),
        pre(s.predicted),
        pre(s.reference),
        s.correct ? "✓" : "✗",
      ]);
      parts.push(`<p class="note">eval.json, greedy trace:</p>`);
      parts.push(table(["question", "trace", "predicted", "reference", "correct"], rows, "samples"));
    }
  });
  return parts.length > 0
    ? parts.join("\n")
    : "<p>No samples (samples.jsonl, or eval.json from <code>nrt eval --json --samples N</code>).</p>";
}
