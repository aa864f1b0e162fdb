// Fault tests of the split engine's sampling servers: 500s, no answer, dropped connections and malformed JSON get
// bounded retries and then a clear error naming the engine, the endpoint and what came back; passing faults
// (including a reload whose answer was lost) are retried away without changing the run; a run whose sampler fails
// mid-way stops, leaves its run directory as its last checkpoint left it, and resumes to the uninterrupted result.
import { cpSync, existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EngineError } from "../../src/engine/engine.js";
import { VllmSampler } from "../../src/engine/vllm.js";
import { setThreads } from "../../src/model/native.js";
import { trainAsync } from "../../src/train/trainer.js";
import { config, metrics, nrtSpawn, STACK, setup, TINY_FLAGS } from "../reliability/_setup.js";
import { startSglangStub } from "../stand-ins/sglang-server.js";
import { startVllmStub, type VllmStub } from "../stand-ins/vllm-server.js";
import { type Fault, type FaultProxy, startFaultProxy } from "./_fault-proxy.js";
import { expectSameRun } from "./_same-run.js";

let dir: string;
let modelDir: string;
let data: string;
let ref: string;
let vllm: VllmStub;
let served: string;
let proxy: FaultProxy;

beforeAll(async () => {
  setThreads(1);
  ({ dir, model: modelDir, data } = setup("nrt-split-faults-"));
  ref = join(dir, "run-native");
  await trainAsync(config({ model: modelDir, data, out: ref, steps: 4, checkpointEvery: 1, seed: 5 }));
  served = join(dir, "served");
  cpSync(modelDir, served, { recursive: true });
  vllm = await startVllmStub({ dir: served, name: "nrt-tiny", devMode: true });
  proxy = await startFaultProxy(vllm.url);
});
afterAll(async () => {
  await proxy?.close();
  await vllm?.close();
});

function expectReference(out: string) {
  expect(metrics(out).map((m) => m.step)).toEqual([1, 2, 3, 4]);
  expectSameRun(out, ref, "split run");
}

const WHAT: Record<Exclude<Fault, "pass" | "lost">, RegExp> = {
  "500": /HTTP 500: \{"detail":"Internal Server Error"\}/,
  hang: /no answer within 0\.4 s/,
  drop: /connection failed/,
  malformed: /not JSON: /,
};

describe("openai-split engine faults", () => {
  for (const fault of ["500", "hang", "drop", "malformed"] as const) {
    it(`${fault}: retries, then an error naming the engine, the endpoint and what came back`, async () => {
      proxy.rule = () => "pass";
      const c = new VllmSampler({
        url: proxy.url,
        timeoutMs: 400,
        retries: 2,
        backoffMs: 5,
        concurrency: 4,
        chunkTokens: 65536,
        servedModel: "",
        reload: "auto",
      });
      await c.start();
      const before = proxy.seen.get("/v1/completions") ?? 0;
      proxy.rule = (path) => (path === "/v1/completions" ? fault : "pass");
      const p = { k: 2, maxTokens: 4, temperature: 1, topP: 1, topK: 0, seed: 1, stop: [0, 1, 2, 3] };
      const err = await c.sample([[1, 5, 6]], p).catch((e: unknown) => e);
      proxy.rule = () => "pass";
      expect(err).toBeInstanceOf(EngineError);
      const msg = (err as Error).message;
      expect(msg).toContain(`openai-split (vllm) engine, POST ${proxy.url}/v1/completions: `);
      expect(msg).toMatch(WHAT[fault]);
      expect(msg).toContain("gave up after 3 attempts");
      expect((proxy.seen.get("/v1/completions") ?? 0) - before).toBe(3);
    });
  }

  it("passing faults, a lost reload answer among them, are retried away: the run is unchanged", async () => {
    const servedS = join(dir, "served-sglang");
    cpSync(modelDir, servedS, { recursive: true });
    const sglang = await startSglangStub({ dir: servedS });
    const sp = await startFaultProxy(sglang.url);
    const faults: Record<string, Fault[]> = {
      "/health": ["500"],
      "/generate": ["drop", "pass", "malformed", "pass", "hang", "pass", "500"],
      "/update_weights_from_disk": ["lost", "pass", "drop"],
    };
    sp.rule = (path, n) => faults[path]?.[n - 1] ?? "pass";
    try {
      const out = join(dir, "run-sglang-faulty");
      await trainAsync(
        config({
          model: modelDir,
          data,
          out,
          steps: 4,
          checkpointEvery: 1,
          seed: 5,
          engine: "openai-split",
          sampler: "sglang",
          samplerUrl: sp.url,
          samplerDir: servedS,
          engineTimeout: 0.5,
          engineRetries: 2,
        }),
      );
      expect(sp.injected.get("lost")).toBe(1);
      expect(sp.injected.get("hang")).toBe(1);
      expectReference(out);
    } finally {
      await sp.close();
      await sglang.close();
    }
  });

  it("a run whose sampler fails mid-way stops with a clear error, leaves its run directory intact and resumes", async () => {
    const out = join(dir, "run-faulty");
    const common = ["--model", modelDir, "--data", data, "--steps", "4", "--checkpoint-every", "1", "--seed", "5"];
    const atStart = proxy.seen.get("/v1/completions") ?? 0;
    // the probe scores once; each step samples 3 prompts: fail from step 3's sampling on
    proxy.rule = (path, n) => (path === "/v1/completions" && n - atStart > 1 + 6 ? "500" : "pass");
    const flags = ["--engine", "openai-split", "--sampler-url", proxy.url, "--sampler-dir", served];
    const retry = ["--engine-retries", "1", "--engine-timeout", "5"];
    const failed = await nrtSpawn(["train", ...common, ...TINY_FLAGS, ...flags, ...retry, "--out", out]).done;
    expect(failed.status).not.toBe(0);
    expect(failed.stderr).toContain(`openai-split (vllm) engine, POST ${proxy.url}/v1/completions: HTTP 500`);
    expect(failed.stderr).not.toMatch(STACK);
    expect(metrics(out).map((m) => m.step)).toEqual([1, 2]);
    expect(readFileSync(join(out, "checkpoints", "latest"), "utf8").trim()).toBe("step-000002");
    expect(readdirSync(join(out, "checkpoints")).filter((d) => /tmp|old/.test(d))).toEqual([]);
    expect(existsSync(join(out, "final"))).toBe(false);

    proxy.rule = () => "pass";
    const reloadsBefore = vllm.hits.get("/collective_rpc") ?? 0;
    const resumed = await nrtSpawn(["train", "--resume", out, "--progress", "false"]).done;
    expect(resumed.stderr).not.toMatch(STACK);
    expect(resumed.status, resumed.stderr).toBe(0);
    // resumed at update 2: the server is brought to the checkpoint's weights first, then once per update
    expect((vllm.hits.get("/collective_rpc") ?? 0) - reloadsBefore).toBe(2);
    expectReference(out);
  });
});
