/**
 * Issue 19, resume: a run records its data file's size and SHA-256 in run_config.json; `--resume` refuses a data
 * file that is not the one the run started with (leaving the run untouched), unless `--allow-data-change`.
 */
import { createHash } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { metrics, nrt, QA_LINES, STACK, setup, snapshot, TINY_FLAGS } from "./_setup.js";

const s = setup("nrt-resumedata-");
afterAll(() => rmSync(s.dir, { recursive: true, force: true }));

let n = 0;
/** A run of 2 steps on its own copy of the data; returns the run directory and its data file. */
function startRun(): { out: string; data: string } {
  const data = join(s.dir, `data-${n}.jsonl`);
  const out = join(s.dir, `run-${n++}`);
  writeFileSync(data, `${QA_LINES.join("\n")}\n`);
  const r = nrt(["train", "--model", s.model, "--data", data, "--out", out, "--steps", "2", ...TINY_FLAGS]);
  expect(r.status, r.stderr).toBe(0);
  return { out, data };
}

const runConfig = (out: string) => JSON.parse(readFileSync(join(out, "run_config.json"), "utf8"));

describe("--resume checks the data file", () => {
  it("the run records the data file's size and sha256", () => {
    const { out, data } = startRun();
    const bytes = readFileSync(data);
    expect(runConfig(out).data).toEqual({
      size: bytes.length,
      sha256: createHash("sha256").update(bytes).digest("hex"),
    });
  });

  it("an unchanged file resumes", () => {
    const { out } = startRun();
    const r = nrt(["train", "--resume", out, "--steps", "3"]);
    expect(r.status, r.stderr).toBe(0);
    expect(metrics(out)).toHaveLength(3);
  });

  it("a file that grew, or changed at the same size, is refused and the run left as it was", () => {
    const { out, data } = startRun();
    const before = snapshot(out);
    writeFileSync(data, `${QA_LINES.join("\n")}\n${QA_LINES[0]}\n`);
    let r = nrt(["train", "--resume", out, "--steps", "3"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(`${data}: --resume: the data file changed since the run started`);
    expect(r.stderr).toMatch(/bytes when the run started, \d+ now/);
    expect(r.stderr).toMatch("--allow-data-change");
    expect(r.stderr).not.toMatch(STACK);
    expect(snapshot(out)).toEqual(before);
    const swapped = [...QA_LINES];
    [swapped[0], swapped[1]] = [swapped[1], swapped[0]]; // same bytes, other order
    writeFileSync(data, `${swapped.join("\n")}\n`);
    r = nrt(["train", "--resume", out, "--steps", "3"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/same size, different content/);
    expect(snapshot(out)).toEqual(before);
  });

  it("--allow-data-change trains on the new file with a warning and records it", () => {
    const { out, data } = startRun();
    writeFileSync(data, `${QA_LINES.slice(1).join("\n")}\n`);
    const r = nrt(["train", "--resume", out, "--steps", "3", "--allow-data-change"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(`warning: ${data}: the data file changed since the run started`);
    expect(metrics(out)).toHaveLength(3);
    expect(runConfig(out).data.size).toBe(readFileSync(data).length);
    expect(nrt(["train", "--resume", out, "--steps", "4"]).status).toBe(0); // the new file is now the run's
  });

  it("a run that recorded no digest resumes with a warning; --allow-data-change needs --resume", () => {
    const { out } = startRun();
    const cfg = runConfig(out);
    delete cfg.data;
    writeFileSync(join(out, "run_config.json"), JSON.stringify(cfg));
    const r = nrt(["train", "--resume", out, "--steps", "3"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch("the run recorded no digest of its data file");
    const f = nrt(["train", "--model", s.model, "--data", s.data, "--out", join(s.dir, "x"), "--allow-data-change"]);
    expect(f.status).toBe(2);
    expect(f.stderr).toMatch("--allow-data-change: only with --resume");
  });
});
