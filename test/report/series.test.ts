import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { pageCharts } from "../../src/report/_html.js";
import { type MetricsRow, type RunData, readRun } from "../../src/report/_read-run.js";
import { accuracyChart, alignSeries, CHARTS, chartData, ema, finalValue, seriesOf } from "../../src/report/_series.js";
import { writeFakeRun } from "./_fake-run.js";

const tmp = mkdtempSync(join(tmpdir(), "nrt-report-series-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const rows = (...r: object[]) => r as MetricsRow[];
const run = (name: string, metrics: MetricsRow[]): RunData => ({
  name,
  dir: name,
  metrics,
  settings: {},
  alarms: [],
  samples: [],
  eval: null,
  warnings: [],
});
const spec = (id: string) => CHARTS.find((c) => c.id === id)!;

describe("metrics → series", () => {
  it("takes the steps that logged a key and skips the others", () => {
    const m = rows({ step: 1, loss: 3 }, { step: 2 }, { step: 3, loss: 1 });
    expect(seriesOf(m, "loss")).toEqual({ x: [1, 3], y: [3, 1] });
    expect(seriesOf(m, "reward/mean")).toEqual({ x: [], y: [] });
  });

  it("aligns series on the union of their steps, null where one has no value", () => {
    const a = alignSeries([
      { x: [1, 2, 4], y: [10, 20, 40] },
      { x: [2, 3], y: [0.2, 0.3] },
    ]);
    expect(a.x).toEqual([1, 2, 3, 4]);
    expect(a.ys).toEqual([
      [10, 20, null, 40],
      [null, 0.2, 0.3, null],
    ]);
  });

  it("overlays runs of different lengths: one line per (run, key), coloured by run, dashed by key", () => {
    const a = run(
      "a",
      rows({ step: 1, "answer/nll_trace": 2, "answer/nll_empty": 3 }, { step: 2, "answer/nll_trace": 1 }),
    );
    const b = run("b", rows({ step: 1, "answer/nll_trace": 2.5 }, { step: 2 }, { step: 3, "answer/nll_trace": 0.5 }));
    const c = chartData([a, b], spec("answer-nll"))!;
    expect(c.x).toEqual([1, 2, 3]);
    expect(c.series.map((s) => [s.run, s.label, s.dash.length > 0])).toEqual([
      [0, "a · after trace", false],
      [0, "a · empty trace", true],
      [1, "b · after trace", false],
    ]);
    expect(c.series.map((s) => s.values)).toEqual([
      [2, 1, null],
      [3, null, null],
      [2.5, null, 0.5],
    ]);
  });

  it("an SFT run draws only the charts it logs; alongside an NRT run it has no reward line", () => {
    const sft = join(tmp, "sft");
    const nrt = join(tmp, "nrt");
    writeFakeRun(sft, { method: "sft", steps: 5, seed: 1 });
    writeFakeRun(nrt, { method: "nrt-ws", steps: 8, seed: 2 });
    const [s, n] = [readRun(sft), readRun(nrt)];
    expect(pageCharts([s]).map((c) => c.id)).toEqual(["loss", "grad-norm", "lr", "throughput"]);
    expect(chartData([s], spec("reward"))).toBeNull();
    const reward = chartData([s, n], spec("reward"))!;
    expect(reward.series.every((l) => l.run === 1)).toBe(true);
    const loss = chartData([s, n], spec("loss"))!;
    expect(loss.series.map((l) => l.run)).toEqual([0, 1]);
    expect(loss.x).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(loss.series[0].values.slice(5)).toEqual([null, null, null]);
    expect(pageCharts([s, n]).map((c) => c.id)).toEqual(CHARTS.map((c) => c.id));
  });

  it("accuracy by k comes from eval.json by_k (numeric k only), unsmoothed", () => {
    const r = run("a", []);
    r.eval = {
      n: 3,
      accuracy: 0.5,
      by_k: { "3": { n: 1, accuracy: 1, accuracy_direct: 0 }, "5": { n: 1, accuracy: 0 }, "?": { n: 1, accuracy: 1 } },
    };
    const c = accuracyChart([run("none", []), r])!;
    expect(c.x).toEqual([3, 5]);
    expect(c.smooth).toBe(false);
    expect(c.series.map((s) => [s.run, s.label, s.values])).toEqual([
      [1, "a · trace", [1, 0]],
      [1, "a · no trace", [0, null]],
    ]);
    expect(accuracyChart([run("none", [])])).toBeNull();
  });
});

describe("smoothing and final values", () => {
  it("ema is the debiased EMA, skipping nulls; weight 0 is the identity", () => {
    // s1 = 0.5·1 = 0.5 → 0.5/(1−0.5) = 1; s2 = 0.5·0.5 + 0.5·3 = 1.75 → 1.75/(1−0.25) = 7/3
    const out = ema([1, null, 3], 0.5);
    expect(out[0]).toBeCloseTo(1, 12);
    expect(out[1]).toBeNull();
    expect(out[2]).toBeCloseTo(7 / 3, 12);
    expect(ema([4, null, -2], 0)).toEqual([4, null, -2]);
    expect(ema([2, 2, 2], 0.9).map((v) => Number(v!.toFixed(12)))).toEqual([2, 2, 2]);
  });

  it("ema runs from its own source text, as the page runs it", () => {
    const fromSource = new Function(`return ${ema.toString()}`)() as typeof ema;
    expect(fromSource([1, null, 3], 0.5)).toEqual(ema([1, null, 3], 0.5));
  });

  it("final value is the mean of the last logged values; null when never logged", () => {
    const m = rows({ step: 1, loss: 10 }, { step: 2, loss: 2 }, { step: 3 }, { step: 4, loss: 4 });
    expect(finalValue(m, "loss", 2)).toBe(3);
    expect(finalValue(m, "loss")).toBeCloseTo(16 / 3, 12);
    expect(finalValue(m, "reward/mean")).toBeNull();
  });
});
