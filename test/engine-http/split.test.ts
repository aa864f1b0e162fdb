// The split engine (--engine openai-split) against stand-in vLLM and SGLang servers on 127.0.0.1 that compute with
// nrt's native engine: a run that samples (and optionally scores) on the server and trains in process, or on a
// Tinker server, gives the in-process run's traces, rewards, advantages, loss and weights, step after step — which
// also shows that every update reached the server (a sampler one update behind would draw other traces).
import { cpSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Engine, EngineError } from "../../src/engine/engine.js";
import { NativeEngine } from "../../src/engine/native.js";
import { SglangSampler } from "../../src/engine/sglang.js";
import { openSplit } from "../../src/engine/split.js";
import { VllmSampler } from "../../src/engine/vllm.js";
import { loadModel } from "../../src/io/load.js";
import { loadModelDir } from "../../src/io/model-dir.js";
import { Model } from "../../src/model/model.js";
import { setThreads } from "../../src/model/native.js";
import { resolveObjective } from "../../src/nrt/methods.js";
import { sampleParams, toTraces } from "../../src/rollout/rollout.js";
import { packNrtBatch, type QuestionGroup, scorePacked } from "../../src/train/nrt-batch.js";
import { trainAsync } from "../../src/train/trainer.js";
import { expectAllclose } from "../helpers/allclose.js";
import { config, metrics, setup } from "../reliability/_setup.js";
import { startSglangStub } from "../stand-ins/sglang-server.js";
import { startTinkerServer, type TinkerServer } from "../stand-ins/tinker-server.js";
import { startVllmStub } from "../stand-ins/vllm-server.js";
import { expectSameRun } from "./_same-run.js";

let dir: string;
let modelDir: string;
let data: string;
let tinker: TinkerServer;
const base = { steps: 3, checkpointEvery: 1, seed: 7 };
let ref: string;

beforeAll(async () => {
  setThreads(1);
  ({ dir, model: modelDir, data } = setup("nrt-split-"));
  ref = join(dir, "run-native");
  await trainAsync(config({ ...base, model: modelDir, data, out: ref }));
  tinker = await startTinkerServer({ model: loadModelDir(modelDir).model, baseModel: "nrt-tiny" });
});
afterAll(() => tinker?.close());

/** A copy of the starting model for a server to be "started on" (nrt rewrites it). */
let copies = 0;
function servedCopy(): string {
  const d = join(dir, `served-${++copies}`);
  cpSync(modelDir, d, { recursive: true });
  return d;
}

/** A 3-step run (base settings) with --engine openai-split and `over`, into dir/name; its run directory. */
async function splitRun(name: string, over: Record<string, unknown>): Promise<string> {
  const out = join(dir, name);
  await trainAsync(config({ ...base, model: modelDir, data, out, engine: "openai-split", ...over }));
  return out;
}

/** The in-process run: metrics, final weights, and the traces and rewards of samples.jsonl. */
function expectSameRunAndTraces(out: string, what: string) {
  expect(metrics(out).map((m) => m.step)).toEqual([1, 2, 3]);
  expectSameRun(out, ref, what);
  // the step's traces come from the server: they are the in-process traces only if the server has every update
  const samples = (d: string) =>
    readFileSync(join(d, "samples.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { step: number; question: string; trace: string; reward: number });
  const [a, b] = [samples(out), samples(ref)];
  expect(a.map((r) => [r.step, r.question, r.trace])).toEqual(b.map((r) => [r.step, r.question, r.trace]));
  for (const [i, r] of b.entries()) expect(a[i].reward).toBeCloseTo(r.reward, 5);
}

describe("openai-split engine", () => {
  it("one NRT step: the in-process traces, rewards, advantages, token weights, loss and updated weights", async () => {
    const local = loadModel(modelDir);
    const asId = local.tokenizer.answerStartId as number;
    const enc = (q: string) => [1, ...local.tokenizer.encode(q)];
    const prompts = ["a1,b+2;b", "a3,b*2;b", "a5,b+1;b"].map(enc);
    const answers = ["b=3", "b=6", "b=6"].map((a) => [...local.tokenizer.encode(a), 2]);
    const run = async (engine: Engine) => {
      const params = sampleParams({
        k: 4,
        temperature: 1,
        topP: 1,
        topK: 0,
        maxTraceTokens: 6,
        seed: 99,
        answerStartId: asId,
        specialIds: [0, 1, 2, asId],
      });
      const out = [];
      for (let s = 0; s < 2; s++) {
        await engine.syncSampler();
        const traces = toTraces(await engine.sample(prompts, { ...params, seed: 99 + s }), asId);
        const groups: QuestionGroup[] = prompts.map((p, g) => ({ prompt: p, answer: answers[g], traces: traces[g] }));
        const pack = packNrtBatch(groups, asId);
        const scored = scorePacked(pack, groups, await engine.score(pack.seqs), resolveObjective({}));
        const opt = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01, clip: 1 };
        out.push({ traces, scored, step: await engine.step(scored.seqs, scored.weights, opt) });
      }
      return out;
    };
    const here = await run(new NativeEngine(local.model));
    expect(here[1].scored.scores.some((s) => s.A.some((a) => a !== 0))).toBe(true);
    const served = servedCopy();
    const vllm = await startVllmStub({ dir: served, name: "nrt-tiny", devMode: true });
    try {
      const learner = loadModelDir(modelDir).model;
      const sampler = new VllmSampler({
        url: vllm.url,
        timeoutMs: 10_000,
        retries: 0,
        backoffMs: 1,
        concurrency: 8,
        chunkTokens: 65536,
        servedModel: "",
        reload: "auto",
      });
      const split = await openSplit(new NativeEngine(learner), learner, sampler, {
        dir: served,
        files: {},
        scoreOnSampler: false,
        probe: [...prompts[0], asId, ...answers[0]],
      });
      const there = await run(split);
      for (const [s, h] of here.entries()) {
        const t = there[s];
        // step 2's traces come from the server after its reload: equal only if the update reached it
        expect(t.traces.map((g) => g.map((x) => [x.tokens, x.emitted, x.truncated]))).toEqual(
          h.traces.map((g) => g.map((x) => [x.tokens, x.emitted, x.truncated])),
        );
        for (const [g, sc] of h.scored.scores.entries()) {
          expectAllclose(t.scored.scores[g].R, sc.R, { what: `step ${s + 1}: R of group ${g}` });
          expectAllclose(t.scored.scores[g].A, sc.A, { what: `step ${s + 1}: A of group ${g}` });
        }
        expectAllclose(t.scored.weights, h.scored.weights, { what: `step ${s + 1}: token weights` });
        expect(t.step.loss).toBeCloseTo(h.step.loss, 5);
        // the sampler's log-probabilities of the traces are the learner's: the server holds the same weights
        for (const [g, group] of t.traces.entries())
          for (const [k, tr] of group.entries())
            expectAllclose(tr.logprobs, h.traces[g][k].logprobs, { what: `step ${s + 1}: sampled logprobs` });
      }
      expectAllclose(learner.params, local.model.params, { atol: 1e-6, what: "updated weights" });
      expect(split.reloads).toBe(1);
    } finally {
      await vllm.close();
    }
  });

  it("vLLM sampling, native training: the in-process run, step for step", async () => {
    const served = servedCopy();
    const vllm = await startVllmStub({ dir: served, name: "nrt-tiny", devMode: true, eosId: 2 });
    try {
      const out = await splitRun("run-vllm", { samplerUrl: vllm.url, samplerDir: served });
      expectSameRunAndTraces(out, "vllm");
      // one reload per update (the first step sampled the starting weights the server was started on)
      expect(vllm.hits.get("/collective_rpc")).toBe(2);
      expect(vllm.hits.get("/reset_prefix_cache")).toBe(2);
      expect(vllm.served.loads).toBe(3);
      const m = metrics(out);
      expect(m.every((r) => r["sampler/logprob_gap"] < 1e-4)).toBe(true);
      const alarms = existsSync(join(out, "alarms.jsonl")) ? readFileSync(join(out, "alarms.jsonl"), "utf8") : "";
      expect(alarms).not.toContain("sampler_drift");
    } finally {
      await vllm.close();
    }
  });

  it("SGLang sampling and scoring, native training: the in-process run", async () => {
    const served = servedCopy();
    const sglang = await startSglangStub({ dir: served });
    try {
      const out = await splitRun("run-sglang", {
        sampler: "sglang",
        samplerUrl: sglang.url,
        samplerDir: served,
        samplerScores: true,
      });
      expectSameRunAndTraces(out, "sglang");
      expect(sglang.hits.get("/update_weights_from_disk")).toBe(2);
      expect(sglang.served.loads).toBe(3);
    } finally {
      await sglang.close();
    }
  });

  it("vLLM sampling, training on a Tinker server: the in-process run", async () => {
    const served = servedCopy();
    const vllm = await startVllmStub({ dir: served, name: "nrt-tiny", devMode: true });
    try {
      const out = await splitRun("run-vllm-tinker", {
        samplerUrl: vllm.url,
        samplerDir: served,
        learner: "tinker",
        engineUrl: tinker.url,
      });
      expectSameRunAndTraces(out, "vllm + tinker");
      expect(tinker.hits.get("/api/v1/asample") ?? 0).toBe(0); // the Tinker server only trained
    } finally {
      await vllm.close();
    }
  });

  it("servers' quirks: SGLang trimming the stop token, the legacy /get_model_info", async () => {
    const served = servedCopy();
    const sglang = await startSglangStub({ dir: served, alwaysTrim: true, legacyInfo: true });
    try {
      const out = await splitRun("run-sglang-trim", { sampler: "sglang", samplerUrl: sglang.url, samplerDir: served });
      expectSameRunAndTraces(out, "sglang, trimmed stops");
      expect(sglang.hits.get("/get_model_info")).toBe(1);
    } finally {
      await sglang.close();
    }
  });

  it("a server started on other weights is brought up to date at start-up; one that ignores reloads stops the run", async () => {
    // the server holds a perturbed model: the probe sees it, nrt writes its weights and reloads
    const served = servedCopy();
    const other = loadModelDir(served).model;
    const perturbed = new Model(
      other.config,
      other.params.map((x, i) => (i % 5 === 0 ? x * 1.7 : x)),
    );
    const sglang = await startSglangStub({ dir: served });
    sglang.served.model = perturbed;
    try {
      const out = join(dir, "run-sglang-stale-start");
      const cfg = { model: modelDir, data, out, engine: "openai-split" as const, sampler: "sglang" as const };
      await trainAsync(config({ ...cfg, steps: 1, samplerUrl: sglang.url, samplerDir: served }));
      expect(sglang.hits.get("/update_weights_from_disk")).toBe(1);
    } finally {
      await sglang.close();
    }

    const served2 = servedCopy();
    const vllm = await startVllmStub({ dir: served2, name: "nrt-tiny", devMode: true, staleReload: true });
    vllm.served.model = perturbed;
    try {
      const out = join(dir, "run-vllm-stale");
      const cfg = { model: modelDir, data, out, engine: "openai-split" as const, samplerUrl: vllm.url };
      await expect(trainAsync(config({ ...cfg, samplerDir: served2 }))).rejects.toThrow(
        /openai-split \(vllm\) engine, http:\/\/127\.0\.0\.1:\d+: after writing the weights to .* and asking the server to reload them, its log-probabilities still differ from the learner's by [\d.]+ nats per token/,
      );
      expect(existsSync(join(out, "metrics.jsonl"))).toBe(false); // nothing written to the run directory
    } finally {
      await vllm.close();
    }
  });

  it("a sampler that silently keeps old weights raises the sampler_drift alarm", async () => {
    const served = servedCopy();
    const vllm = await startVllmStub({ dir: served, name: "nrt-tiny", devMode: true, staleReload: true });
    try {
      const out = join(dir, "run-vllm-drift");
      await trainAsync(
        config({
          model: modelDir,
          data,
          out,
          steps: 6,
          lr: 3e-2,
          engine: "openai-split",
          samplerUrl: vllm.url,
          samplerDir: served,
        }),
      );
      const gaps = metrics(out).map((m) => m["sampler/logprob_gap"]);
      expect(gaps[0]).toBeLessThan(1e-4); // the starting weights: the server and the learner agree
      expect(gaps.at(-1)).toBeGreaterThan(0.05);
      const alarms = readFileSync(join(out, "alarms.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      const drift = alarms.filter((a) => a.name === "sampler_drift");
      expect(drift.length).toBeGreaterThan(0);
      expect(drift[0].message).toMatch(/is the sampling server reloading the weights\?/);
    } finally {
      await vllm.close();
    }
  });

  it("bad settings are refused before anything is written", async () => {
    const out = join(dir, "run-bad");
    const cfg = { model: modelDir, data, out, engine: "openai-split" as const };
    await expect(trainAsync(config({ ...cfg, samplerUrl: "" }))).rejects.toThrow(/needs --sampler-url/);
    await expect(trainAsync(config({ ...cfg, samplerUrl: "http://127.0.0.1:9" }))).rejects.toThrow(
      /needs --sampler-dir/,
    );
    await expect(
      trainAsync(config({ ...cfg, samplerUrl: "http://127.0.0.1:9", samplerDir: modelDir })),
    ).rejects.toThrow(/--sampler-dir: nrt rewrites this directory after every update: give a copy/);
    expect(existsSync(out)).toBe(false);
  });
});

describe("sampler clients read what the servers send, and name what is wrong", () => {
  const opts = (url: string, over = {}) => ({
    url,
    timeoutMs: 2000,
    retries: 0,
    backoffMs: 1,
    concurrency: 4,
    chunkTokens: 20,
    servedModel: "",
    reload: "auto",
    ...over,
  });

  it("vLLM: prompt_logprobs (first null, dicts keyed by id) in chunks equal the native forward", async () => {
    const vllm = await startVllmStub({ dir: modelDir, name: "nrt-tiny" });
    try {
      const c = new VllmSampler(opts(vllm.url));
      expect((await c.start()).modelPath).toBe(modelDir);
      const tokens = Int32Array.from([1, 5, 6, 3, 7, 2, 1, 8, 3, 9, 2, 1, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4]);
      const lens = Int32Array.from([6, 5, 13]);
      const got = await c.score({ tokens, lens });
      const want = loadModelDir(modelDir).model.runner.forward(tokens, lens).logprobs;
      expectAllclose(got, want, { what: "vLLM prompt_logprobs" });
      expect(vllm.hits.get("/v1/completions")).toBe(2); // 6 + 5 tokens, then 13 (chunkTokens 20)
      await expect(new VllmSampler(opts(vllm.url, { servedModel: "other" })).start()).rejects.toThrow(
        /GET http:\/\/127\.0\.0\.1:\d+\/v1\/models: serves nrt-tiny, not other/,
      );
      // reload without dev mode: the route is missing, and the error says how to get it
      await expect(c.reload(modelDir)).rejects.toThrow(/HTTP 404: start vLLM with VLLM_SERVER_DEV_MODE=1/);
    } finally {
      await vllm.close();
    }
  });

  it("SGLang: input_token_logprobs triples equal the native forward; a failed reload is an error", async () => {
    const sglang = await startSglangStub({ dir: modelDir });
    try {
      const c = new SglangSampler(opts(sglang.url));
      await c.start();
      const tokens = Int32Array.from([1, 5, 6, 3, 7, 2, 1, 8, 3, 9, 2]);
      const lens = Int32Array.from([6, 5]);
      expectAllclose(
        await c.score({ tokens, lens }),
        loadModelDir(modelDir).model.runner.forward(tokens, lens).logprobs,
        {
          what: "SGLang input_token_logprobs",
        },
      );
      await expect(c.reload(join(dir, "nowhere"))).rejects.toThrow(
        /openai-split \(sglang\) engine, POST http:\/\/127\.0\.0\.1:\d+\/update_weights_from_disk: HTTP 400: .*not found/,
      );
    } finally {
      await sglang.close();
    }
  });

  it("malformed answers: errors name the engine, the endpoint and what is wrong", async () => {
    const { serveJson } = await import("../stand-ins/served-model.js");
    const answers: Record<string, unknown> = {
      "/v1/models": { data: [{ id: "m" }] },
      "/v1/completions": {
        choices: [{ index: 0, prompt_logprobs: [null, { "99": { logprob: -1 } }], finish_reason: "length" }],
      },
      "/generate": [
        {
          output_ids: [5, 6],
          meta_info: {
            finish_reason: { type: "stop", matched: 9 },
            output_token_logprobs: [
              [-1, 5, null],
              [-2, 6, null],
            ],
          },
        },
      ],
    };
    const stub = await serveJson((_m, path) => answers[path]);
    try {
      const v = new VllmSampler(opts(stub.url));
      await v.start();
      const batch = { tokens: Int32Array.from([1, 5]), lens: Int32Array.of(2) };
      await expect(v.score(batch)).rejects.toThrow(
        /openai-split \(vllm\) engine, POST http:\/\/127\.0\.0\.1:\d+\/v1\/completions: sequence 0, token 1: no logprob for token id 5/,
      );
      const s = new SglangSampler(opts(stub.url));
      const p = { k: 1, maxTokens: 4, temperature: 1, topP: 1, topK: 0, seed: 1, stop: [2, 3] };
      await expect(s.sample([[1]], p)).rejects.toThrow(
        /prompt 0 sample 0: the server says it stopped, but neither the last token \(6\) nor the matched stop \(9\) is one of nrt's stop ids/,
      );
      const err = await v.sample([[1]], p).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EngineError);
    } finally {
      await stub.close();
    }
  });
});
