import { describe, expect, it } from "vitest";
import type { RunData } from "../../src/report/_read-run.js";
import { accuracyByKTable } from "../../src/report/_tables.js";

const run = (name: string, method: string, byK: NonNullable<RunData["eval"]>["by_k"]): RunData => ({
  name,
  dir: `/runs/${name}`,
  metrics: [],
  settings: { method },
  alarms: [],
  samples: [],
  eval: { n: 10, accuracy: 0.5, by_k: byK },
  warnings: [],
});

/** The table's body cells, row by row, with the HTML tags stripped. */
const cells = (html: string): string[][] =>
  [...html.matchAll(/<tr>(.*?)<\/tr>/g)].map((m) => [...m[1].matchAll(/<t[dh]>(.*?)<\/t[dh]>/g)].map((c) => c[1]));

describe("accuracy by k per method", () => {
  it("pools the runs of a method: mean (min–max) per k, numeric k only", () => {
    const html = accuracyByKTable([
      run("ws-s0", "nrt-ws", { "3": { n: 5, accuracy: 1 }, "4": { n: 5, accuracy: 0.5 }, "?": { n: 1, accuracy: 0 } }),
      run("ws-s1", "nrt-ws", { "3": { n: 5, accuracy: 0.8 }, "4": { n: 5, accuracy: 0.7 } }),
      run("sft-s0", "sft", { "3": { n: 5, accuracy: 0.4 } }),
    ]);
    expect(cells(html)).toEqual([
      ["method", "runs", "k=3", "k=4"],
      ["nrt-ws", "2", "90.0 (80.0–100.0)", "60.0 (50.0–70.0)"],
      ["sft", "1", "40.0", "–"],
    ]);
  });

  it("adds exact-match columns where a run's exact accuracy differs (chainlong)", () => {
    const html = accuracyByKTable([
      run("a", "verifree", { "3": { n: 5, accuracy: 0.8, accuracy_exact: 0.2 } }),
      run("b", "rlpr", { "3": { n: 5, accuracy: 0.6, accuracy_exact: 0.6 } }),
    ]);
    expect(cells(html)).toEqual([
      ["method", "runs", "k=3", "k=3 exact"],
      ["verifree", "1", "80.0", "20.0"],
      ["rlpr", "1", "60.0", "60.0"],
    ]);
  });

  it("is empty when no run has eval.json with numeric k", () => {
    const r = run("x", "sft", { "?": { n: 1, accuracy: 1 } });
    expect(accuracyByKTable([r])).toBe("");
    expect(accuracyByKTable([{ ...r, eval: null }])).toBe("");
  });
});
