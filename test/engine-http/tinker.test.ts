// The Tinker engine against a Tinker-API server on 127.0.0.1 that computes with nrt's native engine: an NRT step
// through HTTP gives the in-process step's loss, rewards, advantages and updated weights (float32 tolerance).
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SeqBatch } from "../../src/engine/engine.js";
import { NativeEngine } from "../../src/engine/native.js";
import { openTinker, type TinkerEngine } from "../../src/engine/tinker.js";
import { loadModel } from "../../src/io/load.js";
import { loadModelDir } from "../../src/io/model-dir.js";
import { setThreads } from "../../src/model/native.js";
import { resolveObjective } from "../../src/nrt/methods.js";
import { sampleParams, toTraces } from "../../src/rollout/rollout.js";
import { packNrtBatch, type QuestionGroup, scorePacked } from "../../src/train/nrt-batch.js";
import { train, trainAsync } from "../../src/train/trainer.js";
import { expectAllclose } from "../helpers/allclose.js";
import { config, metrics, setup } from "../reliability/_setup.js";
import { startTinkerServer, type TinkerServer } from "../stand-ins/tinker-server.js";
import { expectSameRun } from "./_same-run.js";

const BASE = "nrt-tiny";
let dir: string;
let modelDir: string;
let data: string;
let server: TinkerServer;

beforeAll(async () => {
  setThreads(1);
  ({ dir, model: modelDir, data } = setup("nrt-tinker-"));
  server = await startTinkerServer({ model: loadModelDir(modelDir).model, baseModel: BASE });
});
afterAll(() => server?.close());

const tinkerOptions = (over = {}) => ({
  url: server.url,
  baseModel: "",
  loraRank: 0,
  timeoutMs: 10_000,
  retries: 1,
  backoffMs: 10,
  chunkTokens: 65536,
  concurrency: 8,
  ...over,
});

/** Sample → score → SPEC §3/§4 → step on one engine; everything the comparison needs. */
async function oneStep(engine: NativeEngine | TinkerEngine, prompts: number[][], answers: number[][], asId: number) {
  const specials = [0, 1, 2, asId];
  await engine.syncSampler();
  const params = sampleParams({
    k: 4,
    temperature: 1,
    topP: 1,
    topK: 0,
    maxTraceTokens: 6,
    seed: 1234,
    answerStartId: asId,
    specialIds: specials,
  });
  const traces = toTraces(await engine.sample(prompts, params), asId);
  const groups: QuestionGroup[] = prompts.map((p, g) => ({ prompt: p, answer: answers[g], traces: traces[g] }));
  const pack = packNrtBatch(groups, asId);
  const forward = await engine.score(pack.seqs);
  const scored = scorePacked(pack, groups, forward, resolveObjective({}));
  const opt = { lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01, clip: 1 };
  const step = await engine.step(scored.seqs, scored.weights, opt);
  // a second update on the same batch (SPEC §4's ratio path): score again, then step
  const again = await engine.score(scored.seqs as SeqBatch);
  const step2 = await engine.step(scored.seqs, scored.weights, { ...opt, lr: 1e-3 });
  return { traces, scored, step, again, step2 };
}

describe("tinker engine over HTTP", () => {
  it("an NRT step through HTTP equals the in-process step (traces, rewards, advantages, loss, weights)", async () => {
    const local = loadModel(modelDir);
    const asId = local.tokenizer.answerStartId as number;
    const enc = (s: string) => [1, ...local.tokenizer.encode(s)];
    const prompts = ["a1,b+2;b", "a3,b*2;b", "a5,b+1;b"].map(enc);
    const answers = ["b=3", "b=6", "b=6"].map((a) => [...local.tokenizer.encode(a), 2]);

    const initial = local.model.params.slice();
    const here = await oneStep(new NativeEngine(local.model), prompts, answers, asId);
    // the comparison means something: traces of several lengths, nonzero advantages, weights that moved
    expect(new Set(here.traces.flat().map((t) => t.tokens.length)).size).toBeGreaterThan(1);
    expect(here.scored.scores.some((s) => s.A.some((a) => a !== 0))).toBe(true);
    expect(local.model.params.some((x, i) => x !== initial[i])).toBe(true);
    const remoteLocal = loadModelDir(modelDir).model;
    const tinker = await openTinker(remoteLocal, tinkerOptions({ probe: [...prompts[0], asId, ...answers[0]] }));
    const there = await oneStep(tinker, prompts, answers, asId);

    expect(there.traces.map((g) => g.map((t) => [t.tokens, t.emitted, t.truncated]))).toEqual(
      here.traces.map((g) => g.map((t) => [t.tokens, t.emitted, t.truncated])),
    );
    expectAllclose(there.scored.forward.logprobs, here.scored.forward.logprobs, { what: "scored logprobs" });
    for (const [g, s] of here.scored.scores.entries()) {
      expectAllclose(there.scored.scores[g].R, s.R, { what: `R of group ${g}` });
      expectAllclose(there.scored.scores[g].A, s.A, { what: `A of group ${g}` });
    }
    expectAllclose(there.scored.weights, here.scored.weights, { what: "token weights" });
    expect(there.step.applied).toBe(true);
    expect(there.step.loss).toBeCloseTo(here.step.loss, 5);
    expect(there.step.gradNorm).toBeCloseTo(here.step.gradNorm as number, 4);
    expectAllclose(there.again.logprobs, here.again.logprobs, { what: "logprobs after the update" });
    expect(there.step2.loss).toBeCloseTo(here.step2.loss, 5);

    const run = [...server.runs.values()].at(-1);
    expectAllclose(run?.model.params ?? [], local.model.params, { atol: 1e-6, what: "server weights" });
    await tinker.pull(); // the weights come back through save_weights_for_sampler + the checkpoint archive
    expectAllclose(remoteLocal.params, local.model.params, { atol: 1e-6, what: "pulled weights" });
    expect(server.hits.get("/api/v1/retrieve_future")).toBeGreaterThan(0);
  });

  it("large batches go as several forward_backward requests, with the same result", async () => {
    const local = loadModel(modelDir);
    const asId = local.tokenizer.answerStartId as number;
    const enc = (s: string) => [1, ...local.tokenizer.encode(s)];
    const prompts = ["a1,b+2;b", "a3,b*2;b"].map(enc);
    const answers = ["b=3", "b=6"].map((a) => [...local.tokenizer.encode(a), 2]);
    const here = await oneStep(new NativeEngine(local.model), prompts, answers, asId);
    const m = loadModelDir(modelDir).model;
    const before = server.hits.get("/api/v1/forward_backward") ?? 0;
    const there = await oneStep(await openTinker(m, tinkerOptions({ chunkTokens: 24 })), prompts, answers, asId);
    expect((server.hits.get("/api/v1/forward_backward") ?? 0) - before).toBeGreaterThan(2);
    expect(there.step.loss).toBeCloseTo(here.step.loss, 5);
    expectAllclose([...server.runs.values()].at(-1)?.model.params ?? [], local.model.params, {
      atol: 1e-6,
      what: "weights after chunked steps",
    });
  });

  it("the synchronous train() refuses a remote engine, naming the way out", () => {
    const cfg = config({ model: modelDir, data, out: join(dir, "run-sync"), engine: "tinker", engineUrl: server.url });
    expect(() => train(cfg)).toThrow(/the tinker engine answers asynchronously: use trainAsync/);
  });

  it("the start-up probe stops a run whose server holds another model", async () => {
    const other = loadModelDir(modelDir).model;
    for (let i = 0; i < other.params.length; i += 7) other.params[i] *= 1.5;
    const local = loadModel(modelDir);
    const probe = [1, ...local.tokenizer.encode("a1,b+2;b"), local.tokenizer.answerStartId as number, 2];
    await expect(openTinker(other, tinkerOptions({ probe }))).rejects.toThrow(
      /tinker engine, POST http:\/\/127\.0\.0\.1:\d+\/api\/v1\/forward: the server's nrt-tiny is not the local model: mean \|Δ log p\| = /,
    );
  });

  it("nrt train --engine tinker gives the in-process run's metrics and final model", async () => {
    const base = { model: modelDir, data, steps: 2, checkpointEvery: 1, seed: 3 };
    const a = join(dir, "run-native");
    const b = join(dir, "run-tinker");
    await trainAsync(config({ ...base, out: a }));
    await trainAsync(config({ ...base, out: b, engine: "tinker", engineUrl: server.url }));
    expect(metrics(b).length).toBe(2);
    expectSameRun(b, a, "nrt train --engine tinker");
  });
});
