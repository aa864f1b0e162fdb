import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterAll, describe, expect, it } from "vitest";
import { register } from "../../src/cli/commands/report.js";
import { NrtError } from "../../src/errors.js";
import { parseMetrics, readRun, runNames } from "../../src/report/_read-run.js";
import { pickSamples } from "../../src/report/_tables.js";
import { buildReport } from "../../src/report/report.js";
import { writeFakeRun } from "./_fake-run.js";

const tmp = mkdtempSync(join(tmpdir(), "nrt-report-read-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const file = (name: string, text: string): string => {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
};

describe("reading a run directory", () => {
  it("metrics: sorted by step, nulls dropped, a repeated step (resume) keeps the last line", () => {
    const p = file(
      "m1.jsonl",
      '{"step":2,"loss":2}\n{"step":1,"loss":null,"lr":1}\n\n{"step":2,"loss":5,"note":"x"}\n',
    );
    expect(parseMetrics(p, [])).toEqual([
      { step: 1, lr: 1 },
      { step: 2, loss: 5 },
    ]);
  });

  it("a bad line is an error naming file:line; a half-written last line is a warning", () => {
    expect(() => parseMetrics(file("m2.jsonl", '{"step":1}\n{"step":\n{"step":3}\n'), [])).toThrow(
      /m2\.jsonl:2: not JSON/,
    );
    expect(() => parseMetrics(file("m3.jsonl", '{"loss":1}\n'), [])).toThrow(/m3\.jsonl:1: "step" must be an integer/);
    expect(() => parseMetrics(file("m4.jsonl", "[1]\n"), [])).toThrow(NrtError);
    const warnings: string[] = [];
    expect(parseMetrics(file("m5.jsonl", '{"step":1,"loss":1}\n{"step":2,"lo'), warnings)).toEqual([
      { step: 1, loss: 1 },
    ]);
    expect(warnings).toEqual([expect.stringMatching(/m5\.jsonl:2: ignored an incomplete last line/)]);
  });

  it("needs metrics.jsonl; everything else is optional", () => {
    const empty = join(tmp, "empty");
    mkdirSync(empty);
    expect(() => readRun(empty)).toThrow(/not a run directory \(no metrics\.jsonl\)/);
    expect(() => readRun(join(tmp, "missing"))).toThrow(/not a directory/);
    writeFileSync(join(empty, "metrics.jsonl"), '{"step":1,"loss":1}\n');
    const r = readRun(empty);
    expect(r).toMatchObject({ name: "empty", settings: {}, alarms: [], samples: [], eval: null });
  });

  it("reads settings, alarms, samples and eval.json, and checks samples.jsonl's fields", () => {
    const d = join(tmp, "full");
    writeFakeRun(d, { method: "nrt-ws", steps: 6, seed: 3, withAlarms: true, withSamples: true, withEval: true });
    const r = readRun(d);
    expect(r.settings.method).toBe("nrt-ws");
    expect(r.alarms.map((a) => a.step)).toEqual([1, 2, 5]);
    expect(r.samples).toHaveLength(4);
    expect(r.samples[0]).toEqual({
      step: 1,
      question: "a=2; b=a+3; c=b*2. c=?",
      trace: "a is 2 so <b>",
      answer: "10",
      reference: "10",
      reward: 0.12,
    });
    expect(r.eval?.accuracy).toBe(0.55);
    appendFileSync(join(d, "samples.jsonl"), '{"step":7,"question":"q","trace":1,"reference":"r"}\n');
    expect(() => readRun(d)).toThrow(/samples\.jsonl:5: "trace" must be a string/);
    writeFileSync(join(d, "samples.jsonl"), '{"step":7,"question":"q","trace":"","reference":"r","reward":null}\n');
    expect(readRun(d).samples).toEqual([{ step: 7, question: "q", trace: "", reference: "r" }]);
    writeFileSync(join(d, "eval.json"), '{"n":1}');
    expect(() => readRun(d)).toThrow(/eval\.json: expected an `nrt eval --json` object/);
  });

  it("run names are the directory names, with parents added until distinct", () => {
    expect(runNames(["/r/x/a", "/r/y/b"])).toEqual(["a", "b"]);
    expect(runNames(["/r/x/a", "/r/y/a"])).toEqual(["x/a", "y/a"]);
    expect(runNames(["/r/a", "/r/a"])).toEqual(["r/a", "r/a (2)"]);
  });

  it("shows the samples of the first and last logged step", () => {
    const s = (step: number, question: string) => ({ step, question, trace: "", reference: "" });
    const all = [s(1, "a"), s(1, "b"), s(1, "c"), s(5, "d"), s(9, "e"), s(9, "f")];
    expect(pickSamples(all, 2).map((x) => x.question)).toEqual(["a", "b", "e", "f"]);
    expect(pickSamples(all, 0)).toEqual([]);
  });
});

describe("the page", () => {
  it("escapes text, embeds the data and uPlot, and loads nothing from the network", () => {
    const d = join(tmp, "page");
    writeFakeRun(d, { method: "nrt-ws", steps: 4, seed: 4, withSamples: true });
    writeFileSync(join(d, "alarms.jsonl"), '{"step":1,"name":"x","message":"</script><img src=x>"}\n');
    const { html } = buildReport([d], { names: ["run <1>"] });
    expect(html).toContain("a is 2 so &lt;b&gt;");
    expect(html).toContain("run &lt;1&gt;");
    expect(html).not.toContain("<img");
    expect(html).toContain("uPlot");
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/);
    const json = /<script type="application\/json" id="nrt-data">(.*?)<\/script>/s.exec(html)![1];
    const data = JSON.parse(json);
    expect(data.runs).toEqual([{ name: "run <1>", color: "#4e79a7" }]);
    expect(data.charts.length).toBeGreaterThan(5);
  });

  it("refuses a bad --smooth or a wrong number of names", () => {
    const d = join(tmp, "page");
    expect(() => buildReport([d], { smooth: 1 })).toThrow(/--smooth: must be in \[0, 1\)/);
    expect(() => buildReport([d], { names: ["a", "b"] })).toThrow(/--names: 2 names for 1 run/);
    expect(() => buildReport([])).toThrow(/at least one run directory/);
  });

  it("nrt report writes the page", async () => {
    const a = join(tmp, "cli-a");
    const b = join(tmp, "cli-b");
    writeFakeRun(a, { method: "nrt-ws", steps: 5, seed: 5 });
    writeFakeRun(b, { method: "sft", steps: 5, seed: 6 });
    const out = join(tmp, "cli.html");
    const program = new Command("nrt").exitOverride();
    register(program);
    const write = process.stdout.write;
    const err = process.stderr.write;
    process.stdout.write = (() => true) as typeof write;
    process.stderr.write = (() => true) as typeof err;
    try {
      await program.parseAsync(["node", "nrt", "report", a, b, "-o", out, "--smooth", "0"]);
    } finally {
      process.stdout.write = write;
      process.stderr.write = err;
    }
    const html = readFileSync(out, "utf8");
    expect(html).toContain("<title>nrt report: cli-a, cli-b</title>");
    expect(html).toContain('"smooth":0');
  });
});
