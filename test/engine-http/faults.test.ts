// Fault tests of the Tinker engine: a server that returns 500s, never answers, drops the connection or answers
// malformed JSON gets bounded retries and then a clear error naming the engine, the endpoint and what came back; a
// POST whose answer was lost is retried without a second gradient; a run that fails mid-way resumes from its last
// checkpoint (nrt train --resume) to the uninterrupted run's result.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EngineError, type SeqBatch } from "../../src/engine/engine.js";
import { NativeEngine } from "../../src/engine/native.js";
import { openTinker, type TinkerOptions } from "../../src/engine/tinker.js";
import { loadModelDir } from "../../src/io/model-dir.js";
import type { AdamWSettings } from "../../src/model/native.js";
import { setThreads } from "../../src/model/native.js";
import { trainAsync } from "../../src/train/trainer.js";
import { expectAllclose } from "../helpers/allclose.js";
import { config, metrics, nrtSpawn, STACK, setup, TINY_FLAGS } from "../reliability/_setup.js";
import { startTinkerServer, type TinkerServer } from "../stand-ins/tinker-server.js";
import { type Fault, type FaultProxy, startFaultProxy } from "./_fault-proxy.js";
import { expectSameRun } from "./_same-run.js";

let dir: string;
let modelDir: string;
let data: string;
let server: TinkerServer;
let proxy: FaultProxy;

beforeAll(async () => {
  setThreads(1);
  ({ dir, model: modelDir, data } = setup("nrt-tinker-faults-"));
  server = await startTinkerServer({ model: loadModelDir(modelDir).model, baseModel: "nrt-tiny" });
  proxy = await startFaultProxy(server.url);
});
afterAll(async () => {
  await proxy?.close();
  await server?.close();
});

const options = (over: Partial<TinkerOptions> = {}): TinkerOptions => ({
  url: proxy.url,
  baseModel: "",
  loraRank: 0,
  timeoutMs: 400,
  retries: 2,
  backoffMs: 5,
  chunkTokens: 65536,
  concurrency: 4,
  ...over,
});

// one packed batch of two sequences with SPEC-§4-like weights, and the step's AdamW settings
const batch: SeqBatch = { tokens: Int32Array.from([1, 5, 6, 3, 7, 2, 1, 8, 3, 9, 2]), lens: Int32Array.from([6, 5]) };
const weights = Float32Array.from([0, 0, 0.5, -0.25, 1, 1, 0, 0, 0.3, 1, 1]);
const opt: AdamWSettings = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, clip: 1 };

const WHAT: Record<Exclude<Fault, "pass" | "lost">, RegExp> = {
  "500": /HTTP 500: \{"detail":"Internal Server Error"\}/,
  hang: /no answer within 0\.4 s/,
  drop: /connection failed/,
  malformed: /not JSON: "\{\\"request_id\\": \\"7\\", \\"status\\": pend"/,
};

describe("tinker engine faults", () => {
  for (const fault of ["500", "hang", "drop", "malformed"] as const) {
    it(`${fault}: retries, then an error naming the engine, the endpoint and what came back`, async () => {
      const m = loadModelDir(modelDir).model;
      proxy.rule = () => "pass";
      const engine = await openTinker(m, options());
      const before = proxy.seen.get("/api/v1/forward_backward") ?? 0;
      proxy.rule = (path) => (path === "/api/v1/forward_backward" ? fault : "pass");
      const err = await engine.step(batch, weights, opt).then(
        () => null,
        (e: unknown) => e,
      );
      proxy.rule = () => "pass";
      expect(err).toBeInstanceOf(EngineError);
      const msg = (err as Error).message;
      expect(msg).toContain(`tinker engine, POST ${proxy.url}/api/v1/forward_backward: `);
      expect(msg).toMatch(WHAT[fault]);
      expect(msg).toContain("gave up after 3 attempts");
      expect((proxy.seen.get("/api/v1/forward_backward") ?? 0) - before).toBe(3);
    });
  }

  it("passing faults are retried away; a lost answer is not applied twice (seq_id)", async () => {
    const here = loadModelDir(modelDir).model;
    const native = new NativeEngine(here);
    const want = native.step(batch, weights, opt);
    native.step(batch, weights, { ...opt, lr: 5e-3 });

    const m = loadModelDir(modelDir).model;
    const faults: Record<string, Fault[]> = {
      "/api/v1/create_session": ["500"],
      "/api/v1/forward_backward": ["lost", "drop"],
      "/api/v1/optim_step": ["lost", "malformed"],
      "/api/v1/retrieve_future": ["hang", "500"],
    };
    const seenAtStart = new Map(proxy.seen);
    proxy.rule = (path, n) => faults[path]?.[n - (seenAtStart.get(path) ?? 0) - 1] ?? "pass";
    const engine = await openTinker(m, options());
    const got = await engine.step(batch, weights, opt);
    await engine.step(batch, weights, { ...opt, lr: 5e-3 });
    proxy.rule = () => "pass";
    expect(proxy.injected.get("lost")).toBeGreaterThanOrEqual(2);
    expect(got.loss).toBeCloseTo(want.loss, 5);
    const run = [...server.runs.values()].at(-1);
    expectAllclose(run?.model.params ?? [], here.params, { atol: 1e-6, what: "weights after faulty steps" });
  });

  it("a run whose server fails mid-way stops with a clear error, leaves its run directory intact and resumes", async () => {
    const out = join(dir, "run-faulty");
    const ref = join(dir, "run-native");
    const common = ["--model", modelDir, "--data", data, "--steps", "4", "--checkpoint-every", "1", "--seed", "5"];
    await trainAsync(config({ model: modelDir, data, out: ref, steps: 4, checkpointEvery: 1, seed: 5 }));

    const fbAtStart = proxy.seen.get("/api/v1/forward_backward") ?? 0;
    proxy.rule = (path, n) => (path === "/api/v1/forward_backward" && n - fbAtStart >= 3 ? "500" : "pass");
    const flags = ["--engine", "tinker", "--engine-url", proxy.url, "--engine-retries", "2", "--engine-timeout", "5"];
    const failed = await nrtSpawn(["train", ...common, ...TINY_FLAGS, ...flags, "--out", out]).done;
    expect(failed.status).not.toBe(0);
    expect(failed.stderr).toContain(`tinker engine, POST ${proxy.url}/api/v1/forward_backward: HTTP 500`);
    expect(failed.stderr).not.toMatch(STACK);
    expect(metrics(out).map((m) => m.step)).toEqual([1, 2]);
    expect(readFileSync(join(out, "checkpoints", "latest"), "utf8").trim()).toBe("step-000002");
    expect(readdirSync(join(out, "checkpoints")).filter((d) => /tmp|old/.test(d))).toEqual([]);
    expect(existsSync(join(out, "final"))).toBe(false);
    loadModelDir(join(out, "checkpoints", "step-000002")); // a whole model directory

    proxy.rule = () => "pass";
    const resumed = await nrtSpawn(["train", "--resume", out, "--progress", "false"]).done;
    expect(resumed.stderr).not.toMatch(STACK);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(metrics(out).map((m) => m.step)).toEqual([1, 2, 3, 4]);
    expectSameRun(out, ref, "resumed after a server failure");
  });
});
