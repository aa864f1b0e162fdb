/**
 * `nrt report`: run directories → one self-contained HTML page (training curves overlaid per run, final metrics,
 * eval accuracies, settings that differ, alarms, sample traces). The page inlines uPlot (read from node_modules
 * at report time) and the data as JSON, so it opens offline. Reads only the run files, never a model.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { NrtError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { renderPage } from "./_html.js";
import { type RunData, readRun, runNames } from "./_read-run.js";

export type { EvalJson, MetricsRow, RunData, SampleRow } from "./_read-run.js";
export { readRun } from "./_read-run.js";

export interface ReportOptions {
  /** initial EMA weight of the page's smoothing slider, in [0, 1); default 0.6 (0: raw curves) */
  smooth?: number;
  /** sample traces shown per run and step (first and last step of samples.jsonl); default 4 */
  samples?: number;
  /** the page title; default "nrt report: <run names>" */
  title?: string;
  /** one name per run directory; default the directory names, made distinct with their parents */
  names?: string[];
}

/** uPlot's minified IIFE build and stylesheet, from the installed package. */
export function uplotAssets(): { js: string; css: string } {
  const require = createRequire(import.meta.url);
  const read = (p: string) => readFileSync(require.resolve(p), "utf8");
  return { js: read("uplot/dist/uPlot.iife.min.js"), css: read("uplot/dist/uPlot.min.css") };
}

/** Reads the runs and renders the page. */
export function buildReport(dirs: readonly string[], o: ReportOptions = {}): { html: string; runs: RunData[] } {
  if (dirs.length === 0) throw new NrtError("at least one run directory is required", "nrt report");
  const smooth = o.smooth ?? 0.6;
  if (!(smooth >= 0 && smooth < 1)) throw new NrtError(`must be in [0, 1), got ${smooth}`, "--smooth");
  if (o.names && o.names.length !== dirs.length)
    throw new NrtError(`${o.names.length} names for ${dirs.length} run directories`, "--names");
  const names = o.names ?? runNames(dirs);
  const runs = dirs.map((d, i) => readRun(d, names[i]));
  const { js, css } = uplotAssets();
  const html = renderPage(runs, { uplotJs: js, uplotCss: css, smooth, samples: o.samples ?? 4, title: o.title });
  return { html, runs };
}

/** Writes the report of `dirs` to `out` (atomically); returns the runs read, for a summary. */
export function writeReport(dirs: readonly string[], out: string, o: ReportOptions = {}): RunData[] {
  const { html, runs } = buildReport(dirs, o);
  writeFileAtomic(out, html);
  return runs;
}
