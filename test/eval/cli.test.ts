// `nrt eval` through bin/nrt.js (the compiled dist/, rebuilt when older than the sources this test covers).

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt as ensureBuiltFor } from "../helpers/ensure-built.js";
import { tinyModelDir, writeJsonl } from "./_tiny-model.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** SPEC §7: the keys of the JSON object, and of each by_k entry (all but by_k). */
const SPEC_KEYS = [
  "n",
  "accuracy",
  "accuracy_sampled",
  "accuracy_direct",
  "accuracy_forced",
  "trace_rate",
  "trace_len_mean",
  "trace_entropy",
  "decision_entropy",
];

function ensureBuilt(): void {
  ensureBuiltFor("src/cli/commands/eval.ts");
}

function nrt(args: string[]) {
  return spawnSync(process.execPath, [join(ROOT, "bin/nrt.js"), ...args], { cwd: ROOT, encoding: "utf8" });
}

describe("nrt eval", () => {
  let dir: string;
  let data: string;
  beforeAll(() => {
    ensureBuilt();
    dir = tinyModelDir();
    data = writeJsonl(dir, [
      { question: "a1,b+1,c+1;c", answer: "5" },
      { question: "a1,b+1,c+1,d+1;d", answer: "7" },
      { question: "a2,b*2,c+1,d+1;d", answer: "3" },
    ]);
  });

  it("--json prints exactly one JSON object on stdout with the SPEC §7 keys", () => {
    const r = nrt(["eval", "--model", dir, "--data", data, "--json", "--max-trace-tokens", "4", "--threads", "1"]);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split("\n").filter((l) => l.length > 0);
    expect(lines).toHaveLength(1);
    const o = JSON.parse(lines[0]);
    for (const k of [...SPEC_KEYS, "by_k"]) expect(o, k).toHaveProperty(k);
    expect(Object.keys(o.by_k)).toEqual(["3", "4"]);
    for (const m of Object.values(o.by_k) as Record<string, unknown>[])
      for (const k of SPEC_KEYS) expect(typeof m[k], k).toBe("number");
    expect(o).toMatchObject({
      n: 3,
      accuracy: 2 / 3,
      accuracy_direct: 1 / 3,
      accuracy_forced: 1 / 3,
      trace_rate: 2 / 3,
    });
    expect(o.by_k["4"]).toMatchObject({ n: 2, trace_len_mean: 2, accuracy: 0.5 });
    expect(o).not.toHaveProperty("samples");
    expect(r.stderr).toContain("acc%"); // the human-readable table goes to stderr
  });

  it("takes the model as a positional argument, and adds samples to the JSON when asked", () => {
    const r = nrt(["eval", dir, "--data", data, "--json", "--samples", "2", "--threads", "1"]);
    expect(r.status, r.stderr).toBe(0);
    const o = JSON.parse(r.stdout);
    expect(o.samples).toHaveLength(2);
    expect(o.samples[1]).toMatchObject({ question: "a1,b+1,c+1,d+1;d", trace: "=8", predicted: "7", correct: true });
  });

  it("prints the tables on stdout without --json", () => {
    const r = nrt(["eval", "--model", dir, "--data", data, "--threads", "1"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^k\s+n\s+acc%/);
    expect(r.stdout).toMatch(/^all\s+3\s+66\.7/m);
    expect(r.stdout).toContain("[0.9,1]");
    expect(r.stdout).toContain('trace "=8" → "7" ✓');
  });

  it("--predictions writes one line per question, and replaces a file only with --force", () => {
    const file = join(dir, "predictions.jsonl");
    const args = ["eval", dir, "--data", data, "--max-trace-tokens", "4", "--threads", "1", "--predictions", file];
    const r = nrt(args);
    expect(r.status, r.stderr).toBe(0);
    const lines = readFileSync(file, "utf8")
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(3);
    expect(lines[1]).toEqual({
      question: "a1,b+1,c+1,d+1;d",
      reference: "7",
      k: 4,
      trace: "=8",
      answer: "7",
      correct: true,
      exact: true,
    });
    expect(lines.map((l) => l.correct)).toEqual([true, true, false]);
    const again = nrt(args);
    expect(again.status).toBe(2);
    expect(again.stderr).toContain(`${file}: already exists (use --force to replace it)`);
    expect(nrt([...args, "--force"]).status).toBe(0);
  });

  it("refuses a missing --data with exit code 2", () => {
    const r = nrt(["eval", "--model", dir]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("--data");
  });
});
