import type uPlot from "uplot";
import type { ChartData } from "./_series.js";

/** The JSON the page embeds (in a `<script type="application/json" id="nrt-data">`). */
export interface PageData {
  runs: { name: string; color: string }[];
  charts: ChartData[];
  /** initial EMA weight of the smoothing slider */
  smooth: number;
}

type Smoother = (values: readonly (number | null)[], w: number) => (number | null)[];

/**
 * Runs in the browser, not in Node: the page embeds this function's source text and calls it with uPlot's global
 * and `ema` (so it must use nothing from its module). Draws every chart into `#charts`, wires the smoothing
 * slider, and sets `data-drawn` on each chart once uPlot has drawn it and `data-ready` on <body> at the end.
 */
export function drawCharts(data: PageData, U: typeof uPlot, smooth: Smoother): void {
  const grid = document.getElementById("charts") as HTMLElement;
  const slider = document.getElementById("smooth") as HTMLInputElement;
  const shown = document.getElementById("smooth-value") as HTMLElement;
  const height = 240;
  const fmt = (v: number): string => {
    const a = Math.abs(v);
    if (a === 0) return "0";
    if (a >= 1e5) return `${Number((v / 1e3).toPrecision(3))}k`;
    if (a < 1e-3) return v.toExponential(0);
    return String(Number(v.toPrecision(3)));
  };
  const plotData = (c: ChartData, w: number): uPlot.AlignedData => [
    c.x,
    ...c.series.map((s) => (c.smooth ? smooth(s.values, w) : s.values)),
  ];
  const plots: { plot: uPlot; chart: ChartData; target: HTMLElement }[] = [];
  for (const c of data.charts) {
    const box = document.createElement("section");
    box.className = "chart";
    box.id = `chart-${c.id}`;
    const h = document.createElement("h3");
    h.textContent = c.title;
    box.appendChild(h);
    if (c.note) {
      const p = document.createElement("p");
      p.className = "note";
      p.textContent = c.note;
      box.appendChild(p);
    }
    const target = document.createElement("div");
    box.appendChild(target);
    grid.appendChild(box);
    const opts: uPlot.Options = {
      width: target.clientWidth,
      height,
      cursor: { sync: { key: c.xLabel } },
      scales: { x: { time: false }, y: c.range ? { range: c.range } : {} },
      axes: [
        {
          label: c.xLabel,
          size: 40,
          incrs: [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5],
        },
        { size: 56, values: (_u: uPlot, splits: number[]) => splits.map(fmt) },
      ],
      series: [
        { label: c.xLabel },
        ...c.series.map((s) => ({
          label: s.label,
          stroke: data.runs[s.run].color,
          dash: s.dash,
          width: 1.5,
          spanGaps: true,
          value: (_u: uPlot, v: number | null) => (v === null ? "–" : fmt(v)),
        })),
      ],
      hooks: {
        draw: [
          () => {
            box.setAttribute("data-drawn", "1");
          },
        ],
      },
    };
    plots.push({ plot: new U(opts, plotData(c, data.smooth), target), chart: c, target });
  }
  const label = (w: number) => {
    shown.textContent = w === 0 ? "off" : w.toFixed(2);
  };
  slider.value = String(data.smooth);
  label(data.smooth);
  slider.addEventListener("input", () => {
    const w = Number(slider.value);
    label(w);
    for (const p of plots) if (p.chart.smooth) p.plot.setData(plotData(p.chart, w));
  });
  window.addEventListener("resize", () => {
    for (const p of plots) p.plot.setSize({ width: p.target.clientWidth, height });
  });
  document.body.setAttribute("data-ready", String(plots.length));
}
