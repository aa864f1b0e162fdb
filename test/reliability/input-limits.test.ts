/**
 * Issue 19, input bounds: every input is read with bounded memory. Devices and directories are refused before a
 * byte is read, a data line over the documented limit (4 MiB) is an error naming the line, settings files have a
 * size limit, pipes are read, and a chat template cannot build an unbounded range.
 */
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readQaFile } from "../../src/data/qa.js";
import { LIMITS } from "../../src/io/read.js";
import { nrtSpawn, QA_LINES, setup, TINY_FLAGS, trainRefused } from "./_setup.js";

const s = setup("nrt-limits-");
afterAll(() => rmSync(s.dir, { recursive: true, force: true }));

let n = 0;
/** A refusal as `trainRefused` checks it, on one line of stderr. */
function refused(args: { model?: string; data?: string; extra?: string[] }, ...what: (string | RegExp)[]): void {
  const err = trainRefused(s, join(s.dir, `run-${n++}`), args, ...what);
  expect(err.trim().split("\n")).toHaveLength(1);
}

describe("data files", () => {
  it("/dev/zero and a directory are refused before a byte is read", () => {
    refused({ data: "/dev/zero" }, "/dev/zero: cannot read data file: a character device");
    refused({ data: s.dir }, `${s.dir}: cannot read data file: a directory`);
  });

  it("a line longer than the limit is an error naming the line (the file is never held whole)", () => {
    const d = join(s.dir, "long-line.jsonl");
    const long = JSON.stringify({ question: "q".repeat(LIMITS.dataLineBytes + 10), answer: "b=1" });
    writeFileSync(d, `${QA_LINES[0]}\n${long}\n${QA_LINES[1]}\n`);
    refused({ data: d }, `${d}:2: line is longer than the limit of 4 MiB`);
  });

  it("a pipe is read (as `--data <(nrt world …)` gives it)", async () => {
    const f = join(s.dir, "pipe");
    execFileSync("mkfifo", [f]);
    const out = join(s.dir, "piped-run");
    const p = nrtSpawn(["train", "--model", s.model, "--data", f, "--out", out, "--steps", "1", ...TINY_FLAGS]);
    const w = await open(f, "w");
    await w.write(`${QA_LINES.join("\n")}\n`);
    await w.close();
    const r = await p.done;
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(join(out, "final"))).toBe(true);
  });

  it("lines split across read chunks come out whole, with their numbers, CRLF or not", () => {
    const d = join(s.dir, "chunks.jsonl");
    const pad = "x".repeat(70_000); // longer than one 64 KiB read
    const lines = QA_LINES.map((l, i) => (i % 2 ? JSON.stringify({ ...JSON.parse(l), pad }) : l));
    writeFileSync(d, `${lines.join("\r\n")}`); // no final newline
    const qa = readQaFile(d);
    expect(qa.records.map((r) => r.line)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(qa.records.map((r) => r.question)).toEqual(QA_LINES.map((l) => JSON.parse(l).question));
  });
});

describe("settings and model files", () => {
  it("a --config that is a device, or larger than its limit, is refused", () => {
    refused({ extra: ["--config", "/dev/zero"] }, "/dev/zero: cannot read config: a character device");
    const big = join(s.dir, "big.yaml");
    writeFileSync(big, `# ${"x".repeat(LIMITS.smallFileBytes)}\nsteps: 1\n`);
    refused({ extra: ["--config", big] }, `${big}: cannot read config: larger than the limit of 16 MiB`);
  });

  it("a tokenizer.json that is a link to /dev/zero is refused", () => {
    const m = join(s.dir, "zero-tokenizer");
    cpSync(s.model, m, { recursive: true });
    rmSync(join(m, "tokenizer.json"));
    symlinkSync("/dev/zero", join(m, "tokenizer.json"));
    refused({ model: m }, "tokenizer.json: cannot read tokenizer.json: a character device");
  });

  it("a symbolic link loop is reported as such, not as a missing file", () => {
    const m = join(s.dir, "loop-model");
    mkdirSync(m);
    symlinkSync(join(m, "b"), join(m, "a"));
    symlinkSync(join(m, "a"), join(m, "b"));
    refused({ model: join(m, "a") }, /loop of symbolic links \(ELOOP\)/);
    const w = join(s.dir, "loop-weights");
    cpSync(s.model, w, { recursive: true });
    rmSync(join(w, "model.safetensors"));
    symlinkSync(join(w, "model.safetensors"), join(w, "model.safetensors"));
    refused({ model: w }, `${w}/model.safetensors: is a loop of symbolic links (ELOOP)`);
  });

  it("a chat template that builds a huge range gets an error naming the limit, at the record's line", () => {
    const m = join(s.dir, "range-template");
    cpSync(s.model, m, { recursive: true });
    writeFileSync(join(m, "chat_template.jinja"), "{{ range(10 ** 10) | length }}{{ messages[0].content }}");
    refused({ model: m }, `${s.data}:1: chat template: range() of 10000000000 elements is more than nrt allows`);
  });
});
