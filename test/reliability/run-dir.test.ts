/**
 * Issue 19, the run directory is nrt's: `nrt train --out` never takes over a directory holding anything else, a
 * run directory is created whole, locked while a process trains in it (refused when the lock is live, taken over
 * when stale), and written without following symbolic links.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { appendNoFollow } from "../../src/io/append.js";
import { createRunDir } from "../../src/train/run-dir.js";
import { acquireRunLock, LOCK_FILE } from "../../src/train/run-lock.js";
import { metrics, nrt, nrtSpawn, STACK, setup, snapshot, TINY_FLAGS } from "./_setup.js";

const s = setup("nrt-rundir-");
afterAll(() => rmSync(s.dir, { recursive: true, force: true }));

const trainArgs = (out: string, steps = 2, extra: string[] = []) => [
  "train",
  "--model",
  s.model,
  "--data",
  s.data,
  "--out",
  out,
  "--steps",
  String(steps),
  ...TINY_FLAGS,
  ...extra,
];

/** A PID that no process has any more: a child that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

function expectRefused(r: ReturnType<typeof nrt>, ...what: (string | RegExp)[]): void {
  expect(r.status, r.stderr).toBe(2);
  expect(r.stderr).toMatch(/^nrt: error: /);
  expect(r.stderr).not.toMatch(STACK);
  expect(r.stderr.trim().split("\n")).toHaveLength(1);
  for (const w of what) expect(r.stderr).toMatch(w);
}

describe("--out never takes over a directory that is not a new run", () => {
  const cases: [string, (d: string) => void][] = [
    [
      "user files in final/",
      (d) => {
        mkdirSync(join(d, "final"), { recursive: true });
        writeFileSync(join(d, "final", "notes.txt"), "mine");
      },
    ],
    [
      "a checkpoints/step-000001/ of the user's",
      (d) => {
        mkdirSync(join(d, "checkpoints", "step-000001"), { recursive: true });
        writeFileSync(join(d, "checkpoints", "step-000001", "weights.bin"), "mine");
      },
    ],
    ["a run_config.json of the user's", (d) => writeFileSync(join(d, "run_config.json"), '{"mine": true}')],
    ["any other file", (d) => writeFileSync(join(d, "thesis.tex"), "mine")],
  ];
  for (const [name, fill] of cases)
    it(name, () => {
      const out = join(s.dir, `taken-${name.replace(/\W+/g, "-")}`);
      mkdirSync(out);
      fill(out);
      const before = snapshot(out);
      const r = nrt(trainArgs(out));
      expectRefused(r, out, name.includes("run_config") ? /already holds a run/ : /is not empty \(it holds /);
      expect(snapshot(out)).toEqual(before);
    });

  it("an empty directory is taken; a file, a path under a file and a symbolic link are refused", () => {
    const empty = join(s.dir, "empty");
    mkdirSync(empty);
    expect(nrt(trainArgs(empty, 1)).status).toBe(0);
    expect(metrics(empty)).toHaveLength(1);
    const file = join(s.dir, "a-file");
    writeFileSync(file, "x");
    expectRefused(nrt(trainArgs(file)), `${file}: exists and is not a directory`);
    expectRefused(nrt(trainArgs(join(file, "run"))), `cannot be created: ${file} is a file`);
    const link = join(s.dir, "link");
    mkdirSync(join(s.dir, "target"));
    symlinkSync(join(s.dir, "target"), link);
    expectRefused(nrt(trainArgs(link)), `${link}: is a symbolic link`);
    expect(readdirSync(join(s.dir, "target"))).toEqual([]);
    expect(readFileSync(file, "utf8")).toBe("x");
  });
});

describe("a run directory is created whole", () => {
  it("holds its settings and the lock from the moment it exists; a refused creation leaves nothing", () => {
    const out = join(s.dir, "whole");
    const lock = createRunDir(out, { "run_config.json": "{}\n" });
    expect(readdirSync(out).sort()).toEqual([LOCK_FILE, "run_config.json"]);
    expect(JSON.parse(readFileSync(join(out, LOCK_FILE), "utf8")).pid).toBe(process.pid);
    lock.release();
    expect(readdirSync(out)).toEqual(["run_config.json"]);
    expect(() => createRunDir(out, { "run_config.json": "{}\n" })).toThrow(/already holds a run/);
    expect(readdirSync(s.dir).filter((e) => e.startsWith("whole.tmp-"))).toEqual([]);
  });

  it("a run killed before its settings were written: --resume says so, --out starts it again", () => {
    const out = join(s.dir, "killed-early");
    const left = `${out}.tmp-${deadPid()}-0badc0de`;
    mkdirSync(left);
    writeFileSync(join(left, "run_config.json"), "{");
    expectRefused(nrt(["train", "--resume", out]), /stopped before its settings were written.*nothing to resume/);
    const legacy = join(s.dir, "killed-early-legacy"); // as nrt < 0.2 left it: a directory without settings
    mkdirSync(legacy);
    writeFileSync(join(legacy, `.run_config.json.tmp-${deadPid()}-0badc0de`), "{");
    expectRefused(nrt(["train", "--resume", legacy]), `${legacy}: holds no run_config.json, so there is nothing`);
    const r = nrt(trainArgs(out, 1));
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(left), "the leftover of the killed creation is removed").toBe(false);
    expect(nrt(trainArgs(legacy, 1)).status).toBe(0);
  });
});

describe("a run directory is locked while a process trains in it", () => {
  it("a second nrt train on the same directory is refused while the first runs, and the first is unharmed", async () => {
    const out = join(s.dir, "busy");
    const first = nrtSpawn(trainArgs(out, 2000, ["--checkpoint-every", "5"]));
    // wait until the first has written a step: it holds the lock from before its first step
    while (!existsSync(join(out, "metrics.jsonl")) || metrics(out).length === 0)
      await new Promise((r) => setTimeout(r, 20));
    const second = nrt(["train", "--resume", out, "--steps", "500"]);
    expectRefused(second, `${out}: is in use: process ${first.pid} is training in it`);
    const third = nrt(trainArgs(out));
    expectRefused(third, `${out}: already holds a run`);
    first.kill("SIGTERM");
    const done = await first.done;
    expect(done.status, done.stderr).toBe(0);
    const steps = metrics(out).map((m) => m.step);
    expect(steps).toEqual(steps.map((_, i) => i + 1)); // one writer: 1, 2, 3, … with no repeats
    expect(existsSync(join(out, LOCK_FILE)), "the lock is released at the end").toBe(false);
    // the lock is free again: a resume now gets as far as checking its settings
    const again = nrt(["train", "--resume", out, "--steps", "1"]);
    expectRefused(again, "--resume: steps may only grow (was 2000)");
  });

  it("a stale lock (its process gone) is taken over; a live one is refused naming its PID", () => {
    const out = join(s.dir, "stale");
    expect(nrt(trainArgs(out, 1)).status).toBe(0);
    writeFileSync(join(out, LOCK_FILE), JSON.stringify({ pid: deadPid(), host: hostname(), start: null }));
    const r = nrt(["train", "--resume", out, "--steps", "2"]);
    expect(r.status, r.stderr).toBe(0);
    expect(metrics(out)).toHaveLength(2);
    expect(existsSync(join(out, LOCK_FILE))).toBe(false);
    const held = acquireRunLock(out); // this test process: alive
    try {
      expectRefused(nrt(["train", "--resume", out, "--steps", "3"]), `is in use: process ${process.pid}`);
      expect(() => acquireRunLock(out)).toThrow(/is in use/);
    } finally {
      held.release();
    }
    expect(metrics(out)).toHaveLength(2);
  });
});

describe("a run directory is written without following symbolic links", () => {
  it("samples.jsonl linked out of the run directory: --resume refuses, the outside file is untouched", () => {
    const out = join(s.dir, "linked");
    expect(nrt(trainArgs(out, 1)).status).toBe(0);
    const outside = join(s.dir, "precious.txt");
    writeFileSync(outside, "mine\n");
    rmSync(join(out, "samples.jsonl"), { force: true });
    symlinkSync(outside, join(out, "samples.jsonl"));
    expectRefused(nrt(["train", "--resume", out, "--steps", "3"]), `${out}/samples.jsonl: is a symbolic link`);
    expect(readFileSync(outside, "utf8")).toBe("mine\n");
  });

  it("an append never writes through a link", () => {
    const outside = join(s.dir, "outside.txt");
    writeFileSync(outside, "mine\n");
    const link = join(s.dir, "log.jsonl");
    symlinkSync(outside, link);
    expect(() => appendNoFollow(link, "x\n")).toThrow(/log\.jsonl: is a symbolic link/);
    expect(readFileSync(outside, "utf8")).toBe("mine\n");
    appendNoFollow(join(s.dir, "fresh.jsonl"), "a\n");
    appendNoFollow(join(s.dir, "fresh.jsonl"), "b\n");
    expect(readFileSync(join(s.dir, "fresh.jsonl"), "utf8")).toBe("a\nb\n");
  });
});
