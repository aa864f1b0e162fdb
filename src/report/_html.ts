import { drawCharts, type PageData } from "./_client.js";
import type { RunData } from "./_read-run.js";
import { accuracyChart, CHARTS, type ChartData, chartData, ema } from "./_series.js";
import {
  accuracyByKTable,
  alarmsTable,
  esc,
  evalTable,
  finalTable,
  samplesSection,
  settingsTables,
} from "./_tables.js";

/** Run colours (Tableau 10), in run order; more runs reuse them. */
export const PALETTE: readonly string[] = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
];

export interface PageOptions {
  /** uPlot's IIFE build and stylesheet, inlined so that the page needs no network */
  uplotJs: string;
  uplotCss: string;
  /** initial EMA weight of the smoothing slider, in [0, 1) */
  smooth: number;
  /** samples shown per run and step */
  samples: number;
  title?: string;
}

/** The charts of the page: the training curves any run logs, then accuracy by k when a run has eval.json. */
export function pageCharts(runs: readonly RunData[]): ChartData[] {
  const out = CHARTS.map((c) => chartData(runs, c)).filter((c): c is ChartData => c !== null);
  const acc = accuracyChart(runs);
  return acc ? [...out, acc] : out;
}

/** JSON replacer: 6 significant digits are plenty for a curve and keep long runs' pages small. */
const round6 = (_k: string, v: unknown): unknown =>
  typeof v === "number" && !Number.isInteger(v) ? Number(v.toPrecision(6)) : v;

/** Embeds text in a <script> element: "</script" and "<!--" cannot occur in it. */
const scriptText = (s: string): string => s.replace(/<(?=\/script|!--)/gi, "\\u003c");

const CSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h1 { font-size: 22px; margin: 0 0 8px; } h2 { font-size: 18px; margin: 28px 0 8px; } h3 { font-size: 14px; margin: 0; }
.runs { list-style: none; padding: 0; margin: 0 0 8px; } .runs li { margin: 2px 0; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
.controls { margin: 8px 0 12px; } .warn { color: #a33; }
#charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 16px; }
.chart { border: 1px solid #ddd; border-radius: 4px; padding: 8px; min-width: 0; }
.note { color: #666; font-size: 12px; margin: 2px 0; }
.tbl { border-collapse: collapse; margin: 4px 0 12px; } .tbl th, .tbl td { border: 1px solid #ddd; padding: 3px 8px; vertical-align: top; }
.tbl th { background: #f5f5f5; text-align: left; } .num td { text-align: right; } .num td:first-child { text-align: left; white-space: nowrap; }
.samples pre { margin: 0; white-space: pre-wrap; word-break: break-word; max-width: 420px; font-size: 12px; }
.u-legend { font-size: 12px; }
`;

/** The whole report page. Tables are rendered here; the charts are drawn in the browser by `drawCharts`. */
export function renderPage(runs: readonly RunData[], o: PageOptions): string {
  const colors = runs.map((_, i) => PALETTE[i % PALETTE.length]);
  const data: PageData = {
    runs: runs.map((r, i) => ({ name: r.name, color: colors[i] })),
    charts: pageCharts(runs),
    smooth: o.smooth,
  };
  const title = o.title ?? `nrt report: ${runs.map((r) => r.name).join(", ")}`;
  const runList = runs
    .map((r, i) => {
      const method = r.settings.method === undefined ? "" : ` — method ${esc(String(r.settings.method))}`;
      return `<li><span class="swatch" style="background:${colors[i]}"></span><b>${esc(r.name)}</b>${method} <span class="note">${esc(r.dir)}</span></li>`;
    })
    .join("\n");
  const warnings = runs.flatMap((r) => r.warnings).map((w) => `<p class="warn">${esc(w)}</p>`);
  const evals = evalTable(runs, colors);
  const byK = accuracyByKTable(runs);
  const script = `const ema = ${ema.toString()};\n(${drawCharts.toString()})(JSON.parse(document.getElementById("nrt-data").textContent), uPlot, ema);`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${o.uplotCss}</style>
<style>${CSS}</style>
</head>
<body>
<h1>${esc(title)}</h1>
<ul class="runs">
${runList}
</ul>
${warnings.join("\n")}
<div class="controls"><label>EMA smoothing <input id="smooth" type="range" min="0" max="0.99" step="0.01"> <span id="smooth-value"></span></label>
<span class="note">— curves are smoothed in the page; the tables use the raw values.</span></div>
<div id="charts"></div>
<h2>Final metrics</h2>
<p class="note">Mean of the last 10 logged steps.</p>
${finalTable(runs, colors)}
${evals ? `<h2>Evaluation</h2>\n${evals}` : ""}
${byK ? `<h3>Accuracy by k per method</h3>\n<p class="note">Free greedy accuracy (%) by number of variables: mean over the method's runs (min–max).</p>\n${byK}` : ""}
<h2>Settings</h2>
${settingsTables(runs)}
<h2>Alarms</h2>
${alarmsTable(runs, colors)}
<h2>Sample traces</h2>
${samplesSection(runs, colors, o.samples)}
<script type="application/json" id="nrt-data">${scriptText(JSON.stringify(data, round6))}</script>
<script>${scriptText(o.uplotJs)}</script>
<script>${scriptText(script)}</script>
</body>
</html>
`;
}
