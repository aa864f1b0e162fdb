/**
 * Issue 19, outputs: `-o/--out` of export, report, world, import and grad never overwrites the command's own
 * inputs (not even with --force), replaces an existing output only with --force, and says in one line what is
 * wrong with a directory or a path under a file.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nrt, STACK, setup, snapshot, TINY_FLAGS } from "./_setup.js";

const s = setup("nrt-outputs-");
afterAll(() => rmSync(s.dir, { recursive: true, force: true }));
const run = join(s.dir, "run");

beforeAll(() => {
  const r = nrt(["train", "--model", s.model, "--data", s.data, "--out", run, "--steps", "1", ...TINY_FLAGS]);
  expect(r.status, r.stderr).toBe(0);
});

function expectRefused(args: string[], ...what: (string | RegExp)[]): void {
  const r = nrt(args);
  expect(r.status, r.stderr).toBe(2);
  expect(r.stderr).toMatch(/^nrt: error: /);
  expect(r.stderr).not.toMatch(STACK);
  expect(r.stderr.trim().split("\n")).toHaveLength(1);
  for (const w of what) expect(r.stderr).toMatch(w);
}

const gguf = (out: string, ...extra: string[]) => ["export", "--format", "gguf", s.model, "-o", out, ...extra];

describe("nrt export", () => {
  it("never overwrites the model it exports, not even with --force", () => {
    const before = snapshot(s.model);
    const target = join(s.model, "model.safetensors");
    expectRefused(gguf(target), `-o ${target}: would overwrite ${s.model}`, /an input of this command/);
    expectRefused(gguf(target, "--force"), /would overwrite/);
    expectRefused(gguf(s.model, "--force"), /would overwrite/);
    const ofRun = join(run, "final", "model.safetensors"); // a run directory stands for its final model
    expectRefused(["export", "--format", "gguf", run, "-o", ofRun, "--force"], `would overwrite ${run}`);
    expect(snapshot(s.model)).toEqual(before);
  });

  it("a directory, a path under a file, an existing file without --force: one line each", () => {
    const dir = join(s.dir, "a-dir");
    mkdirSync(dir);
    expectRefused(gguf(dir), `-o ${dir}: is a directory; give the name of the file to write`);
    const file = join(s.dir, "a-file");
    writeFileSync(file, "mine");
    expectRefused(gguf(join(file, "m.gguf")), `cannot be created: ${file} is a file, not a directory`);
    expectRefused(gguf(file), `-o ${file}: already exists (use --force to overwrite it)`);
    expect(readFileSync(file, "utf8")).toBe("mine");
    const r = nrt(gguf(file, "--force"));
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(file).subarray(0, 4).toString()).toBe("GGUF");
  });

  it("verl-nrt never writes into the model or over its data", () => {
    const before = snapshot(s.model);
    const verl = (out: string) => ["export", "--format", "verl-nrt", s.model, "--data", s.data, "-o", out, "--force"];
    expectRefused(verl(s.model), /would overwrite/);
    expectRefused(verl(s.dir), /would overwrite .*an input of this command/); // holds the model and the data
    expect(snapshot(s.model)).toEqual(before);
  });
});

describe("nrt report", () => {
  it("never overwrites a file of the runs it reads; an existing page only with --force", () => {
    const metricsFile = join(run, "metrics.jsonl");
    const before = readFileSync(metricsFile, "utf8");
    expectRefused(["report", run, "-o", metricsFile, "--force"], `would overwrite ${metricsFile}`);
    expect(readFileSync(metricsFile, "utf8")).toBe(before);
    const page = join(s.dir, "report.html");
    writeFileSync(page, "mine");
    expectRefused(["report", run, "-o", page], "already exists (use --force");
    expect(readFileSync(page, "utf8")).toBe("mine");
    const r = nrt(["report", run, "-o", page, "--force"]);
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(page, "utf8")).toMatch(/^<!doctype html>/i);
  });
});

describe("nrt world, import and grad", () => {
  it("world -o: an existing file only with --force", () => {
    const f = join(s.dir, "world.jsonl");
    writeFileSync(f, "mine");
    expectRefused(["world", "chain", "--n", "3", "-o", f], "already exists (use --force");
    expect(readFileSync(f, "utf8")).toBe("mine");
    expect(nrt(["world", "chain", "--n", "3", "-o", f, "--force"]).status).toBe(0);
    expect(readFileSync(f, "utf8").trim().split("\n")).toHaveLength(3);
  });

  it("import -o: never the directory that holds the checkpoint being imported", () => {
    const dir = join(s.dir, "import-src");
    mkdirSync(dir);
    const bin = join(dir, "m.bin");
    writeFileSync(bin, Buffer.alloc(64));
    expectRefused(["import", "llama2c", bin, "--tokenizer", bin, "-o", dir, "--force"], `would overwrite ${bin}`);
    expect(readFileSync(bin).length).toBe(64);
  });

  it("grad --out: existing outputs only with --force; never the batch; not under a file", () => {
    const batch = join(s.dir, "batch.json");
    const b = {
      answer_start_id: 3,
      groups: [{ prompt: [1, 5], answer: [6, 2], traces: [{ tokens: [7], emitted: true }] }],
    };
    writeFileSync(batch, JSON.stringify(b));
    const out = join(s.dir, "grad-out");
    const grad = (o: string, ...extra: string[]) => [
      "grad",
      "--model",
      s.model,
      "--batch",
      batch,
      "--out",
      o,
      ...extra,
    ];
    expect(nrt(grad(out)).status).toBe(0);
    expectRefused(grad(out), `--out ${join(out, "grads.safetensors")}: already exists (use --force`);
    expect(nrt(grad(out, "--force")).status).toBe(0);
    const file = join(s.dir, "plain-file");
    writeFileSync(file, "x");
    expectRefused(grad(file), `cannot be created: ${file} is a file`);
    mkdirSync(join(s.dir, "g2"));
    const inside = join(s.dir, "g2", "stats.json");
    writeFileSync(inside, JSON.stringify(b));
    expectRefused(
      ["grad", "--model", s.model, "--batch", inside, "--out", join(s.dir, "g2"), "--force"],
      /would overwrite/,
    );
  });
});
