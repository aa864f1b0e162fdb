/**
 * Issue 19, signals: Ctrl-C / SIGTERM stop `nrt train` in every phase of its start-up — blocked opening a FIFO
 * that has no writer, blocked reading a pipe that sends nothing, rendering a chat template that loops for minutes
 * — with nothing written. (Once steps run, a signal finishes the step and checkpoints: crash.test.ts.)
 * Linux only: the tests wait for the process to block by reading /proc/PID/wchan.
 */
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { nrtSpawn, QA_LINES, setup, TINY_FLAGS } from "./_setup.js";

const s = setup("nrt-signals-");
const started: ReturnType<typeof nrtSpawn>[] = [];
afterAll(() => {
  for (const p of started) p.kill("SIGKILL"); // a test that failed may leave its process blocked
  rmSync(s.dir, { recursive: true, force: true });
});

let n = 0;
function fifo(): string {
  const p = join(s.dir, `fifo-${n++}`);
  execFileSync("mkfifo", [p]);
  return p;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the process's main thread sleeps in the kernel function `fn` (e.g. opening a FIFO). */
async function blockedIn(pid: number, fn: RegExp): Promise<void> {
  for (;;) {
    let w = "";
    try {
      w = readFileSync(`/proc/${pid}/wchan`, "utf8");
    } catch {
      // not started yet, or gone
    }
    if (fn.test(w)) return;
    await sleep(10);
  }
}

function train(data: string, model = s.model) {
  const out = join(s.dir, `run-${n++}`);
  const args = ["train", "--model", model, "--data", data, "--out", out, "--steps", "2", ...TINY_FLAGS];
  const p = nrtSpawn(args);
  started.push(p);
  return { out, p };
}

/** The process ended because of the signal (its default action) or exited non-zero right after it. */
function expectStoppedBy(r: { status: number | null; signal: NodeJS.Signals | null }, sig: NodeJS.Signals): void {
  if (r.signal !== null) expect(r.signal).toBe(sig);
  else expect(r.status).not.toBe(0);
}

describe("a signal stops nrt train during start-up, with nothing written", () => {
  it("SIGINT while it waits to open a FIFO that has no writer", async () => {
    const { out, p } = train(fifo());
    await blockedIn(p.pid, /fifo|partner/);
    p.kill("SIGINT");
    expectStoppedBy(await p.done, "SIGINT");
    expect(existsSync(out)).toBe(false);
  });

  it("SIGTERM while it reads a pipe that sends nothing", async () => {
    const f = fifo();
    const { out, p } = train(f);
    const writer = await open(f, "w"); // returns once nrt has opened the other end; then nothing is sent
    try {
      await blockedIn(p.pid, /pipe/);
      p.kill("SIGTERM");
      expectStoppedBy(await p.done, "SIGTERM");
    } finally {
      await writer.close();
    }
    expect(existsSync(out)).toBe(false);
  });

  it("SIGTERM while it renders a chat template that loops for minutes", async () => {
    const model = join(s.dir, "slow-template");
    cpSync(s.model, model, { recursive: true });
    writeFileSync(
      join(model, "chat_template.jinja"),
      "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}{{ messages[0].content }}",
    );
    const f = fifo();
    const { out, p } = train(f, model);
    const writer = await open(f, "w"); // nrt is past start-up's first phases: it reads the data from here
    await writer.write(`${QA_LINES.join("\n")}\n`);
    await writer.close();
    // running (not sleeping) in the template: /proc/PID/stat's state is R
    for (;;) {
      const st = readFileSync(`/proc/${p.pid}/stat`, "utf8");
      if (st.slice(st.lastIndexOf(")") + 2).startsWith("R")) break;
      await sleep(10);
    }
    p.kill("SIGTERM");
    const r = await p.done;
    expectStoppedBy(r, "SIGTERM");
    expect(r.stderr).not.toMatch(/done:/);
    expect(existsSync(out)).toBe(false);
  });
});
