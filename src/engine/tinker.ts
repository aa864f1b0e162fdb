/**
 * The Tinker-API engine: the whole step on a Tinker server (SkyRL's self-hosted one on FSDP/Megatron, or any server
 * speaking the protocol), JSON bodies, each POST answered by a request id that is polled with retrieve_future.
 *
 *   sample → asample (token-id prompt, num_samples = K, stop token ids, every sampling field explicit)
 *   score  → forward (cross_entropy datums; the logprobs of every target token)
 *   step   → forward_backward (cross_entropy with nrt's per-token float weights) + optim_step (adam_params)
 *   sync   → save_weights_for_sampler (ephemeral: a sampling session per weights version)
 *   state  → save_weights / load_weights (weights + optimizer, for checkpoints and --resume)
 *   pull   → save_weights_for_sampler with a path, then the checkpoint archive (a Hugging Face directory)
 *
 * Training requests carry an increasing seq_id, so a POST retried after a dropped connection is recognised by the
 * server (SkyRL returns the first request's future) instead of accumulating a gradient twice.
 */
import { NrtError } from "../errors.js";
import { parseHfConfig } from "../io/hf-config.js";
import { parseSafetensors } from "../io/safetensors.js";
import type { Model } from "../model/model.js";
import type { AdamWSettings } from "../model/native.js";
import { mapLimit } from "../util/map-limit.js";
import { detail, HttpClient, isObj } from "./_http.js";
import { untar } from "./_tar.js";
import { datumText, type SampledSequenceJson, tensorData } from "./_tinker-wire.js";
import { type Chunk, chunkSequences } from "./chunks.js";
import type { Engine, EngineState, Sampled, SampleParams, Scored, SeqBatch, StepResult } from "./engine.js";
import { EngineError, probeGap, promptSeed } from "./engine.js";

export interface TinkerOptions {
  url: string;
  /** the server's base model name; "" takes the server's only one */
  baseModel: string;
  /** 0: full fine-tuning (SkyRL); > 0: a LoRA adapter of this rank (the hosted service) */
  loraRank: number;
  timeoutMs: number;
  retries: number;
  backoffMs: number;
  /** most tokens per forward / forward_backward request; larger batches are sent as several requests */
  chunkTokens: number;
  /** sample requests in flight at once */
  concurrency: number;
  /** continue from a state saved by `saveState` (a tinker://…/weights/… path) with this many updates done */
  resume?: { statePath: string; updates: number };
  /** a sequence to score on the server and locally: the start-up check that the server holds `model` */
  probe?: readonly number[];
  /** largest mean |Δ log p| (nats) between the server's and the local model on the probe */
  probeTolerance?: number;
}

type Json = Record<string, unknown>;
/** datums per forward(_backward) request at most (the tinker SDK's fwdbwd_max_chunk_len) */
const MAX_DATUMS = 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Connects to a Tinker server, checks it and its model, and creates (or restores) the training run. */
export async function openTinker(model: Model, o: TinkerOptions): Promise<TinkerEngine> {
  const e = new TinkerEngine(model, o);
  await e.start();
  return e;
}

export class TinkerEngine implements Engine {
  readonly name = "tinker";
  readonly where: string;
  private readonly http: HttpClient;
  private modelId = "";
  private baseModel = "";
  private seq = 0;
  private samplerSeq = 0;
  private sampleSeq = 0;
  private adamStep: number;
  private synced = -1;
  private sampler: Json = {};
  /** the batch last scored, with its log-probabilities, for checking a step's loss before sending it */
  private scored: { batch: SeqBatch; logprobs: Float32Array } | null = null;

  constructor(
    readonly model: Model,
    readonly o: TinkerOptions,
  ) {
    this.where = o.url;
    this.adamStep = o.resume?.updates ?? 0;
    this.http = new HttpClient({
      engine: "tinker",
      base: o.url,
      timeoutMs: o.timeoutMs,
      retries: o.retries,
      backoffMs: o.backoffMs,
    });
  }

  get updates(): number {
    return this.adamStep;
  }

  private fail(path: string, message: string): EngineError {
    return new EngineError("tinker", this.http.endpoint("POST", path), message);
  }

  /** The start-up probe and run creation. */
  async start(): Promise<void> {
    const health = await this.http.json("GET", "/api/v1/healthz");
    if (health.status !== 200 || !isObj(health.json) || health.json.status !== "ok")
      throw new EngineError("tinker", this.http.endpoint("GET", "/api/v1/healthz"), `not healthy: ${health.text}`);
    const caps = await this.http.json("GET", "/api/v1/get_server_capabilities");
    const models = isObj(caps.json) && Array.isArray(caps.json.supported_models) ? caps.json.supported_models : null;
    if (caps.status !== 200 || !models)
      throw new EngineError(
        "tinker",
        this.http.endpoint("GET", "/api/v1/get_server_capabilities"),
        `no supported_models in the answer: HTTP ${caps.status} ${caps.text.slice(0, 200)}`,
      );
    const names = models.map((m) => (isObj(m) ? String(m.model_name) : "?"));
    if (this.o.baseModel) {
      if (!names.includes(this.o.baseModel))
        throw this.fail("/api/v1/get_server_capabilities", `serves ${names.join(", ")}, not ${this.o.baseModel}`);
      this.baseModel = this.o.baseModel;
    } else {
      if (names.length !== 1)
        throw this.fail(
          "/api/v1/get_server_capabilities",
          `serves ${names.join(", ")}: choose one with --engine-model`,
        );
      this.baseModel = names[0];
    }
    const session = await this.post("/api/v1/create_session", {
      tags: ["nrt"],
      user_metadata: {},
      sdk_version: "nrt/0.1.0",
      type: "create_session",
    });
    const sessionId = String(session.session_id);
    const created = await this.post("/api/v1/create_model", {
      session_id: sessionId,
      model_seq_id: 0,
      base_model: this.baseModel,
      lora_config: { rank: this.o.loraRank },
      type: "create_model",
    });
    if (typeof created.model_id === "string") this.modelId = created.model_id;
    if (created.request_id !== undefined) {
      const r = await this.result("/api/v1/create_model", String(created.request_id));
      if (typeof r.model_id === "string") this.modelId = r.model_id;
    }
    if (!this.modelId) throw this.fail("/api/v1/create_model", `no model_id in ${JSON.stringify(created)}`);
    if (this.o.resume) {
      await this.run("/api/v1/load_weights", {
        model_id: this.modelId,
        path: this.o.resume.statePath,
        optimizer: true,
        seq_id: ++this.seq,
        type: "load_weights",
      });
    }
    if (this.o.probe) await this.checkProbe(this.o.probe);
  }

  /** Scores the probe here and on the server: a different model (or a failed resume) shows as a large gap. */
  private async checkProbe(seq: readonly number[]): Promise<void> {
    const batch = { tokens: Int32Array.from(seq), lens: Int32Array.of(seq.length) };
    const there = (await this.score(batch)).logprobs;
    this.scored = null;
    const here = this.model.runner.forward(batch.tokens, batch.lens).logprobs;
    const gap = probeGap(there, here, seq.length);
    const tol = this.o.probeTolerance ?? 0.1;
    if (!(gap <= tol))
      throw this.fail(
        "/api/v1/forward",
        `the server's ${this.baseModel} is not the local model: mean |Δ log p| = ${gap.toPrecision(3)} nats over ` +
          `${seq.length - 1} probe tokens (tolerance ${tol})`,
      );
  }

  /** POST expecting 200 JSON; a 4xx is a clear error with the server's detail. */
  private async post(path: string, body: unknown): Promise<Json> {
    const r = await this.http.json("POST", path, body);
    if (r.status !== 200 || !isObj(r.json)) throw this.fail(path, `HTTP ${r.status}: ${detail(r.text)}`);
    return r.json;
  }

  /** POST of an asynchronous request: its request id. */
  private async submit(path: string, body: unknown): Promise<string> {
    const r = await this.post(path, body);
    const id = r.request_id ?? r.future_id;
    if (typeof id !== "string" && typeof id !== "number")
      throw this.fail(path, `no request_id in ${JSON.stringify(r)}`);
    return String(id);
  }

  /** Polls retrieve_future until the request is done: its result, or the server's error for it. */
  private async result(path: string, requestId: string): Promise<Json> {
    for (;;) {
      const r = await this.http.json("POST", "/api/v1/retrieve_future", {
        request_id: requestId,
        allow_metadata_only: false,
      });
      if (r.status === 408) continue; // SkyRL: still pending after its long-poll
      if (r.status === 200 && isObj(r.json)) {
        if (r.json.type === "try_again") {
          await sleep(20);
          continue;
        }
        if (typeof r.json.error === "string" && "category" in r.json)
          throw this.fail(path, `request ${requestId} failed on the server: ${r.json.error}`);
        return r.json;
      }
      throw this.fail(path, `request ${requestId} failed: HTTP ${r.status}: ${detail(r.text)}`);
    }
  }

  private async run(path: string, body: unknown): Promise<Json> {
    return this.result(path, await this.submit(path, body));
  }

  async syncSampler(): Promise<number> {
    if (this.synced === this.adamStep) return this.adamStep;
    const path = "/api/v1/save_weights_for_sampler";
    let r: Json | undefined;
    for (let attempt = 0; !r; attempt++) {
      try {
        r = await this.run(path, {
          model_id: this.modelId,
          sampling_session_seq_id: this.samplerSeq++,
          seq_id: ++this.seq,
          type: "save_weights_for_sampler",
        });
      } catch (e) {
        // a retried POST the server had already taken: its checkpoint name now exists; take a fresh one
        if (attempt === 0 && e instanceof EngineError && e.message.includes("HTTP 409")) continue;
        throw e;
      }
    }
    if (typeof r.sampling_session_id === "string") this.sampler = { sampling_session_id: r.sampling_session_id };
    else if (typeof r.path === "string") this.sampler = { model_path: r.path };
    else throw this.fail(path, `neither sampling_session_id nor path in ${JSON.stringify(r)}`);
    this.synced = this.adamStep;
    return this.adamStep;
  }

  async sample(prompts: readonly (readonly number[])[], p: SampleParams): Promise<Sampled[][]> {
    if (p.maxTokens === 0)
      return prompts.map(() =>
        Array.from({ length: p.k }, () => ({ tokens: [], stopId: -1, logprobs: [], entropy: null })),
      );
    if (this.synced !== this.adamStep) await this.syncSampler();
    const path = "/api/v1/asample";
    const stop = new Set(p.stop);
    const one = async (prompt: readonly number[], g: number): Promise<Sampled[]> => {
      const r = await this.run(path, {
        num_samples: p.k,
        prompt: { chunks: [{ type: "encoded_text", tokens: [...prompt] }] },
        sampling_params: {
          max_tokens: p.maxTokens,
          seed: promptSeed(p.seed, g),
          stop: [...p.stop],
          temperature: p.temperature,
          top_k: p.topK > 0 ? p.topK : -1,
          top_p: p.topP,
        },
        ...this.sampler,
        seq_id: this.sampleSeq++,
        prompt_logprobs: false,
        type: "sample",
      });
      const seqs = r.sequences;
      if (!Array.isArray(seqs) || seqs.length !== p.k)
        throw this.fail(path, `prompt ${g}: expected ${p.k} sequences, got ${JSON.stringify(r).slice(0, 200)}`);
      return seqs.map((s, k) => this.sampled(s as SampledSequenceJson, stop, p.maxTokens, `prompt ${g} sample ${k}`));
    };
    return mapLimit(prompts, this.o.concurrency, one);
  }

  /** A sequence as nrt reads it: the stop id (which the server includes, as vLLM and SkyRL do) split off. */
  private sampled(s: SampledSequenceJson, stop: Set<number>, max: number, what: string): Sampled {
    const path = "/api/v1/asample";
    let tokens: number[];
    let logprobs: number[];
    try {
      tokens = tensorData(s.tokens, `${what}: tokens`);
      logprobs = tensorData(s.logprobs ?? [], `${what}: logprobs`);
    } catch (e) {
      throw this.fail(path, (e as Error).message);
    }
    if (logprobs.length !== tokens.length)
      throw this.fail(path, `${what}: ${logprobs.length} logprobs for ${tokens.length} tokens (nrt asks for logprobs)`);
    if (tokens.length > max) throw this.fail(path, `${what}: ${tokens.length} tokens, more than max_tokens ${max}`);
    const last = tokens[tokens.length - 1];
    if (tokens.length > 0 && stop.has(last))
      return { tokens: tokens.slice(0, -1), stopId: last, logprobs: logprobs.slice(0, -1), entropy: null };
    if (s.stop_reason === "stop")
      throw this.fail(
        path,
        `${what}: stop_reason "stop" but the last token (${last}) is no stop id: the server strips stop tokens, and ` +
          "nrt needs them to tell ⟨answer_start⟩ from other special tokens",
      );
    return { tokens, stopId: -1, logprobs, entropy: null };
  }

  /** the loss is a sum, so the server's gradients accumulated over the chunks are the whole batch's */
  private chunks(batch: SeqBatch): Chunk[] {
    return chunkSequences(batch.lens, this.o.chunkTokens, MAX_DATUMS);
  }

  /** Submits the batch as forward or forward_backward requests, in seq_id order; their ids and chunks. */
  private async submitPasses(kind: "forward" | "forward_backward", batch: SeqBatch, w: Float32Array | null) {
    const path = `/api/v1/${kind}`;
    const ids: { id: string; chunk: Chunk }[] = [];
    for (const c of this.chunks(batch)) {
      const data: string[] = [];
      let at = c.at;
      for (let s = c.first; s < c.first + c.count; s++) {
        const n = batch.lens[s];
        if (n >= 2) data.push(datumText(batch.tokens, at, n, w));
        at += n;
      }
      const input = `{"data":[${data.join(",")}],"loss_fn":"cross_entropy"}`;
      const key = kind === "forward" ? "forward_input" : "forward_backward_input";
      const body = `{"model_id":${JSON.stringify(this.modelId)},"${key}":${input},"seq_id":${++this.seq}}`;
      ids.push({ id: await this.submit(path, body), chunk: c });
    }
    return ids;
  }

  /** The results of submitted passes, in order. */
  private passResults(kind: "forward" | "forward_backward", ids: { id: string; chunk: Chunk }[]) {
    return Promise.all(ids.map(async ({ id, chunk }) => ({ chunk, out: await this.result(`/api/v1/${kind}`, id) })));
  }

  /** The per-datum outputs of a forward(_backward) result, checked. */
  private outputs(path: string, out: Json, count: number): Json[] {
    const outs = out.loss_fn_outputs;
    if (!Array.isArray(outs) || outs.length !== count || !outs.every(isObj))
      throw this.fail(path, `expected ${count} loss_fn_outputs, got ${JSON.stringify(out).slice(0, 200)}`);
    return outs as Json[];
  }

  async score(batch: SeqBatch): Promise<Scored> {
    const path = "/api/v1/forward";
    const logprobs = new Float32Array(batch.tokens.length);
    const ids = await this.submitPasses("forward", batch, null);
    for (const { chunk, out } of await this.passResults("forward", ids)) {
      let at = chunk.at;
      const datums = [...batch.lens.subarray(chunk.first, chunk.first + chunk.count)].filter((n) => n >= 2).length;
      const outs = this.outputs(path, out, datums);
      let d = 0;
      for (let s = chunk.first; s < chunk.first + chunk.count; s++) {
        const n = batch.lens[s];
        if (n >= 2) {
          let lp: number[];
          try {
            lp = tensorData(outs[d++].logprobs, `sequence ${s}: logprobs`);
          } catch (e) {
            throw this.fail(path, (e as Error).message);
          }
          if (lp.length !== n - 1) throw this.fail(path, `sequence ${s}: ${lp.length} logprobs for ${n - 1} targets`);
          for (let i = 0; i < n - 1; i++) logprobs[at + 1 + i] = lp[i];
        }
        at += n;
      }
    }
    this.scored = { batch, logprobs };
    return { logprobs, entropy: null };
  }

  async step(batch: SeqBatch, weights: Float32Array, o: AdamWSettings): Promise<StepResult> {
    // the server accumulates gradients until optim_step and has no way to drop them: a step that would give a
    // non-finite loss is refused here, before anything is sent
    let predicted = 0;
    for (const w of weights) if (!Number.isFinite(w)) predicted = Number.NaN;
    const known = this.scored?.batch === batch;
    if (this.scored && known)
      for (let t = 0; t < weights.length; t++) if (weights[t] !== 0) predicted -= weights[t] * this.scored.logprobs[t];
    this.scored = null;
    if (!Number.isFinite(predicted)) return { loss: predicted, gradNorm: null, applied: false };
    const fb = "/api/v1/forward_backward";
    const ids = await this.submitPasses("forward_backward", batch, weights);
    // with the loss known to be finite, optim_step goes right behind (the server runs requests in seq_id order),
    // saving a round trip; otherwise it waits for the server's loss
    const optim = () =>
      this.submit("/api/v1/optim_step", {
        model_id: this.modelId,
        adam_params: {
          learning_rate: o.lr,
          beta1: o.beta1,
          beta2: o.beta2,
          eps: o.eps,
          weight_decay: o.weightDecay,
          grad_clip_norm: o.clip,
        },
        seq_id: ++this.seq,
        type: "optim_step",
      });
    const early = known ? await optim() : null;
    const earlyResult = early ? this.result("/api/v1/optim_step", early) : null;
    earlyResult?.catch(() => {}); // awaited below, after the loss; an error then is the one reported
    let loss = 0;
    for (const { chunk, out } of await this.passResults("forward_backward", ids)) {
      const m = isObj(out.metrics) ? out.metrics : {};
      if (typeof m["loss:sum"] === "number") loss += m["loss:sum"];
      else {
        const datums = [...batch.lens.subarray(chunk.first, chunk.first + chunk.count)].filter((n) => n >= 2).length;
        for (const d of this.outputs(fb, out, datums))
          for (const x of tensorData(d.elementwise_loss, "elementwise_loss")) loss += x;
      }
    }
    if (!Number.isFinite(loss))
      throw this.fail(
        fb,
        `the loss came back ${loss}: the server's gradient${early ? " and weights are" : " is"} no longer usable and ` +
          "nothing can clear it; resume the run from its last checkpoint (nrt train --resume)",
      );
    const r = await (earlyResult ?? this.result("/api/v1/optim_step", await optim()));
    this.adamStep++;
    const metrics = isObj(r.metrics) ? r.metrics : {};
    const key = Object.keys(metrics).find((k) => /(^|[/_.])grad_norm(:|$)/.test(k));
    const gradNorm = key && typeof metrics[key] === "number" ? (metrics[key] as number) : null;
    if (gradNorm !== null && !Number.isFinite(gradNorm))
      throw this.fail("/api/v1/optim_step", `the gradient norm came back ${gradNorm}; resume from the last checkpoint`);
    return { loss, gradNorm, applied: true };
  }

  async pull(): Promise<void> {
    const path = "/api/v1/save_weights_for_sampler";
    const name = `nrt-pull-${this.adamStep}-${this.seq + 1}`;
    const r = await this.run(path, {
      model_id: this.modelId,
      path: name,
      seq_id: ++this.seq,
      type: "save_weights_for_sampler",
    });
    const tp = typeof r.path === "string" ? parseTinkerPath(r.path) : null;
    if (!tp) throw this.fail(path, `no tinker:// path in ${JSON.stringify(r)}`);
    const archive = `/api/v1/training_runs/${tp.id}/checkpoints/${tp.checkpoint}/archive`;
    const files = untar(await this.http.bytes(archive));
    const where = this.http.endpoint("GET", archive);
    if (files.some((f) => f.name.endsWith("adapter_model.safetensors")))
      throw new EngineError("tinker", where, `a LoRA adapter, not a full model: the weights stay at ${r.path}`);
    const cfg = files.find((f) => f.name.endsWith("config.json") && !f.name.includes("/"));
    const weights = files.filter((f) => f.name.endsWith(".safetensors"));
    if (!cfg || weights.length === 0)
      throw new EngineError("tinker", where, `no config.json and *.safetensors in [${files.map((f) => f.name)}]`);
    try {
      const config = parseHfConfig(JSON.parse(new TextDecoder().decode(cfg.data)), `${where}: config.json`);
      for (const k of ["vocabSize", "hiddenSize", "numLayers", "numHeads", "numKvHeads", "intermediateSize"] as const)
        if (config[k] !== this.model.config[k])
          throw new NrtError(
            `${k} is ${config[k]}, the local model's ${this.model.config[k]}`,
            `${where}: config.json`,
          );
      const seen = new Set<string>();
      for (const f of weights)
        for (const [name, t] of parseSafetensors(f.data, `${where}: ${f.name}`).tensors) {
          if (!this.model.has(name)) continue; // e.g. lm_head.weight with tied embeddings
          const view = this.model.view(name);
          if (t.data.length !== view.length) throw new NrtError(`${t.data.length} values for ${view.length}`, name);
          view.set(t.data);
          seen.add(name);
        }
      const missing = this.model.table.filter((p) => !seen.has(p.name)).map((p) => p.name);
      if (missing.length) throw new NrtError(`missing tensors ${missing.slice(0, 3).join(", ")}…`, where);
    } catch (e) {
      if (e instanceof EngineError) throw e;
      throw new EngineError("tinker", where, (e as Error).message);
    }
  }

  async saveState(name: string): Promise<EngineState> {
    const path = "/api/v1/save_weights";
    const r = await this.run(path, { model_id: this.modelId, path: name, seq_id: ++this.seq, type: "save_weights" });
    if (typeof r.path !== "string") throw this.fail(path, `no path in ${JSON.stringify(r)}`);
    return {
      optimizer: null,
      remote: {
        engine: "tinker",
        url: this.o.url,
        base_model: this.baseModel,
        model_id: this.modelId,
        state_path: r.path,
      },
    };
  }

  close(): void {}
}

/** tinker://<id>/<checkpoint> or tinker://<id>/<kind>/<checkpoint> */
export function parseTinkerPath(p: string): { id: string; kind: string; checkpoint: string } | null {
  const m = /^tinker:\/\/([^/]+)\/(?:([^/]+)\/)?([^/]+)$/.exec(p);
  return m ? { id: m[1], kind: m[2] ?? "", checkpoint: m[3] } : null;
}
