/**
 * A Tinker-API server computing with nrt's own native engine, for tests and the loopback benchmark (not a
 * production server: one model in memory per training run, full fine-tuning only, no auth). It speaks the JSON
 * protocol as SkyRL's self-hosted server does (skyrl/tinker/api.py): every POST of work answers
 * {future_id, status: "pending", request_id}; retrieve_future long-polls and answers the result, 408 while still
 * pending, 400 {detail} for a failed request; training requests with a (model_id, seq_id) seen before get the first
 * request's id back (409 if the body differs); sampled sequences include their stop token; cross_entropy sums.
 *
 * Requests run one at a time in arrival order; sample requests waiting together run as one native batch (each
 * stream with its own seed, so batching does not change what is drawn). A forward_backward on exactly the
 * sequences of the previous forward, with no update between, reuses that forward's activations. A run keeps its
 * two newest sampling sessions (save_weights_for_sampler without a path); older ones are retired.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tensorData } from "../../src/engine/_tinker-wire.js";
import { streamSeed } from "../../src/engine/engine.js";
import { toHfConfig } from "../../src/io/hf-config.js";
import { encodeSafetensors } from "../../src/io/safetensors.js";
import { Model } from "../../src/model/model.js";
import { native } from "../../src/model/native.js";
import { tar } from "./tar.js";

export interface TinkerServerOptions {
  /** the base model (copied for each training run) */
  model: Model;
  /** its name in get_server_capabilities */
  baseModel: string;
  host?: string;
  /** 0: any free port */
  port?: number;
  /** how long retrieve_future holds a pending request before answering 408 */
  holdMs?: number;
  /** how long the first queued request waits for others to arrive (so that sample requests share a batch) */
  batchWindowMs?: number;
}

interface RunState {
  id: string;
  model: Model;
  grads: Float32Array;
  m: Float32Array;
  v: Float32Array;
  step: number;
  /** requests other than create_model so far (load_weights must come first) */
  requests: number;
  /** no gradient accumulated since the last optim_step */
  gradsClean: boolean;
  /** the sequences whose forward the native engine holds, while no update has happened since */
  held: { tokens: Int32Array; lens: Int32Array; logprobs: Float32Array } | null;
}

interface Job {
  id: string;
  kind: string;
  run: RunState | null;
  body: Record<string, unknown>;
}

interface Future {
  done: boolean;
  /** JSON text of the result, or the error message */
  text: string;
  failed: boolean;
  waiters: (() => void)[];
}

type Json = Record<string, unknown>;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface TinkerServer {
  url: string;
  server: Server;
  /** training runs by model_id */
  runs: Map<string, RunState>;
  /** requests received, by path (for tests) */
  hits: Map<string, number>;
  close(): Promise<void>;
}

export async function startTinkerServer(o: TinkerServerOptions): Promise<TinkerServer> {
  const holdMs = o.holdMs ?? 10_000;
  const runs = new Map<string, RunState>();
  const futures = new Map<string, Future>();
  const bySeq = new Map<string, { id: string; body: string }>();
  const weights = new Map<string, { params: Float32Array; m: Float32Array; v: Float32Array; step: number }>();
  const samplers = new Map<string, Model>(); // sampling_session_id or tinker:// path → weights snapshot
  const sessionsOf = new Map<string, string[]>(); // model_id → its sampling sessions, oldest first
  const spare: Model[] = []; // snapshots of retired sampling sessions, reused
  const archives = new Map<string, Uint8Array>(); // `${model_id}/${checkpoint}` → tar
  const hits = new Map<string, number>();
  const queue: Job[] = [];
  let nextId = 1;
  let scheduled = false;

  const getRun = (body: Json): RunState => {
    const r = runs.get(String(body.model_id));
    if (!r) throw new HttpError(404, `Model '${String(body.model_id)}' not found`);
    return r;
  };

  const newFuture = (): string => {
    const id = String(nextId++);
    futures.set(id, { done: false, text: "", failed: false, waiters: [] });
    return id;
  };

  const finish = (id: string, failed: boolean, text: string) => {
    const f = futures.get(id);
    if (!f) return;
    f.done = true;
    f.failed = failed;
    f.text = text;
    for (const w of f.waiters.splice(0)) w();
  };

  const enqueue = (kind: string, body: Json, run: RunState | null): string => {
    const key = run && typeof body.seq_id === "number" && /^(forward|forward_backward|optim_step)$/.test(kind);
    const text = JSON.stringify(body);
    if (key) {
      const seen = bySeq.get(`${run.id}:${body.seq_id}`);
      if (seen) {
        if (seen.body !== text) throw new HttpError(409, "Training request sequence number was reused");
        return seen.id;
      }
    }
    const id = newFuture();
    if (key && run) bySeq.set(`${run.id}:${body.seq_id}`, { id, body: text });
    queue.push({ id, kind, run, body });
    if (!scheduled) {
      scheduled = true;
      // a sample request waits a moment for the others of its step; anything else runs as soon as possible
      if (kind === "sample") setTimeout(drain, o.batchWindowMs ?? 1);
      else setImmediate(drain);
    }
    return id;
  };

  const drain = () => {
    scheduled = false;
    while (queue.length > 0) {
      const job = queue[0];
      const batch = job.kind === "sample" ? queue.filter((j) => j.kind === "sample") : [job];
      for (const j of batch) queue.splice(queue.indexOf(j), 1);
      if (job.kind === "sample") {
        runSamples(batch);
        continue;
      }
      try {
        finish(job.id, false, execute(job));
      } catch (e) {
        finish(job.id, true, (e as Error).message);
      }
    }
  };

  const execute = (job: Job): string => {
    const run = job.run as RunState;
    const b = job.body;
    switch (job.kind) {
      case "create_model":
        return JSON.stringify({ model_id: run.id, type: "create_model" });
      case "forward":
      case "forward_backward":
        return modelPass(run, job.kind, (job.kind === "forward" ? b.forward_input : b.forward_backward_input) as Json);
      case "optim_step": {
        const a = (b.adam_params ?? {}) as Json;
        const num = (k: string, d: number) => (typeof a[k] === "number" ? (a[k] as number) : d);
        const lr = num("learning_rate", 1e-4);
        const gradNorm = native().adamw(run.model.config, run.model.params, run.grads, run.m, run.v, {
          lr,
          beta1: num("beta1", 0.9),
          beta2: num("beta2", 0.95),
          eps: num("eps", 1e-12),
          weightDecay: num("weight_decay", 0),
          clip: num("grad_clip_norm", 0),
          step: ++run.step,
        });
        run.grads.fill(0);
        run.gradsClean = true;
        run.held = null;
        return JSON.stringify({ metrics: { "skyrl.ai/grad_norm": gradNorm, "skyrl.ai/learning_rate": lr } });
      }
      case "save_weights": {
        const name = String(b.path);
        weights.set(`tinker://${run.id}/weights/${name}`, {
          params: run.model.params.slice(),
          m: run.m.slice(),
          v: run.v.slice(),
          step: run.step,
        });
        return JSON.stringify({ path: `tinker://${run.id}/weights/${name}`, type: "save_weights" });
      }
      case "load_weights": {
        const w = weights.get(String(b.path));
        if (!w) throw new Error(`Checkpoint not found: ${String(b.path)}`);
        run.model.params.set(w.params);
        if (b.optimizer !== false) {
          run.m.set(w.m);
          run.v.set(w.v);
          run.step = w.step;
        }
        run.held = null;
        return JSON.stringify({ type: "load_weights" });
      }
      case "save_weights_for_sampler": {
        const reuse = spare.pop();
        const snap = reuse ?? new Model(run.model.config, run.model.params.slice());
        if (reuse) reuse.params.set(run.model.params);
        if (typeof b.path === "string" && b.path) {
          const path = `tinker://${run.id}/${b.path}`;
          samplers.set(path, snap);
          archives.set(`${run.id}/${b.path}`, archiveOf(snap));
          return JSON.stringify({ path, type: "save_weights_for_sampler", sampling_session_id: null });
        }
        const sid = `sampling_${randomUUID().slice(0, 8)}`;
        samplers.set(sid, snap);
        // a run samples from its newest weights: sessions two versions old are retired and their memory reused
        const mine = [...(sessionsOf.get(run.id) ?? []), sid];
        while (mine.length > 2) {
          const old = mine.shift() as string;
          spare.push(samplers.get(old) as Model);
          samplers.delete(old);
        }
        sessionsOf.set(run.id, mine);
        return JSON.stringify({ path: null, type: "save_weights_for_sampler", sampling_session_id: sid });
      }
      default:
        throw new Error(`unknown request type ${job.kind}`);
    }
  };

  /** forward / forward_backward over cross_entropy datums, packed as one native batch. */
  const modelPass = (run: RunState, kind: string, input: Json): string => {
    if (input?.loss_fn !== "cross_entropy") throw new Error(`loss_fn ${String(input?.loss_fn)} is not supported here`);
    const data = input.data;
    if (!Array.isArray(data) || data.length === 0) throw new Error("data must be a non-empty list of datums");
    const seqs: number[][] = [];
    const ws: number[][] = [];
    data.forEach((d: Json, i: number) => {
      const inp = inputTokens(d.model_input);
      const li = (d.loss_fn_inputs ?? {}) as Json;
      const tgt = tensorData(li.target_tokens, `data[${i}].target_tokens`);
      const w = li.weights === undefined ? tgt.map(() => 1) : tensorData(li.weights, `data[${i}].weights`);
      if (tgt.length !== inp.length || w.length !== inp.length || inp.length === 0)
        throw new Error(`data[${i}]: model_input, target_tokens and weights must have one length`);
      for (let t = 0; t + 1 < inp.length; t++)
        if (tgt[t] !== inp[t + 1])
          throw new Error(`data[${i}]: target_tokens must be model_input shifted by one (next-token targets only)`);
      seqs.push([...inp, tgt[tgt.length - 1]]);
      ws.push(w);
    });
    const tokens = Int32Array.from(seqs.flat());
    const lens = Int32Array.from(seqs.map((s) => s.length));
    const same = (h: RunState["held"]) =>
      h !== null &&
      h.lens.length === lens.length &&
      h.tokens.length === tokens.length &&
      h.lens.every((x, i) => x === lens[i]) &&
      h.tokens.every((x, i) => x === tokens[i]);
    let logprobs: Float32Array;
    if (kind === "forward_backward" && same(run.held)) logprobs = (run.held as { logprobs: Float32Array }).logprobs;
    else logprobs = run.model.runner.forward(tokens, lens).logprobs;
    run.held = { tokens, lens, logprobs };
    const w = new Float32Array(tokens.length);
    let at = 0;
    for (const [s, seq] of seqs.entries()) {
      for (let i = 0; i < seq.length - 1; i++) w[at + 1 + i] = ws[s][i];
      at += seq.length;
    }
    let loss = 0;
    if (kind === "forward_backward") {
      if (run.gradsClean) loss = run.model.runner.backward(w, run.grads);
      else {
        const g = new Float32Array(run.grads.length);
        loss = run.model.runner.backward(w, g);
        for (let i = 0; i < g.length; i++) run.grads[i] += g[i]; // Tinker accumulates until optim_step
      }
      run.gradsClean = false;
      run.held = null;
    } else {
      for (let t = 0; t < w.length; t++) if (w[t] !== 0) loss -= w[t] * logprobs[t];
    }
    const outs: string[] = [];
    at = 0;
    for (const seq of seqs) {
      const n = seq.length - 1;
      const lp = logprobs.subarray(at + 1, at + 1 + n);
      const el = Float32Array.from(lp, (x, i) => -x * w[at + 1 + i]);
      outs.push(
        `{"logprobs":{"data":[${lp.join(",")}],"dtype":"float32","shape":[${n}]},` +
          `"elementwise_loss":{"data":[${el.join(",")}],"dtype":"float32","shape":[${n}]}}`,
      );
      at += seq.length;
    }
    return `{"loss_fn_output_type":"ArrayRecord","loss_fn_outputs":[${outs.join(",")}],"metrics":{"loss:sum":${loss}}}`;
  };

  /** Sample requests as native batches: one per sampler and sampling settings. */
  const runSamples = (jobs: Job[]) => {
    const groups = new Map<string, { model: Model; p: Json; jobs: Job[] }>();
    for (const j of jobs) {
      try {
        const b = j.body;
        const key = String(b.sampling_session_id ?? b.model_path ?? "");
        const model = key ? samplers.get(key) : baseModel();
        if (!model) throw new Error(`Sampling session or checkpoint not found: ${key}`);
        const p = (b.sampling_params ?? {}) as Json;
        if (typeof p.max_tokens !== "number" || p.max_tokens <= 0)
          throw new Error("max_tokens must be a positive number");
        if (p.stop !== undefined && !(Array.isArray(p.stop) && p.stop.every(Number.isInteger)))
          throw new Error("stop must be token ids here");
        const gk = JSON.stringify([key, p.max_tokens, p.temperature, p.top_k, p.top_p, p.stop]);
        const g = groups.get(gk) ?? { model, p, jobs: [] };
        g.jobs.push(j);
        groups.set(gk, g);
      } catch (e) {
        finish(j.id, true, (e as Error).message);
      }
    }
    for (const { model, p, jobs: js } of groups.values()) {
      try {
        const flat: number[] = [];
        const lens: number[] = [];
        const seeds: number[] = [];
        const ks: number[] = [];
        for (const j of js) {
          const prompt = inputTokens(j.body.prompt);
          const k = typeof j.body.num_samples === "number" ? j.body.num_samples : 1;
          const seed = (j.body.sampling_params as Json).seed;
          const s = typeof seed === "number" ? seed : Math.floor(Math.random() * 2 ** 31); // SkyRL: random if absent
          ks.push(k);
          for (let i = 0; i < k; i++) {
            for (const t of prompt) flat.push(t);
            lens.push(prompt.length);
            seeds.push(streamSeed(s, i));
          }
        }
        const M = p.max_tokens as number;
        const r = model.runner.generate(Int32Array.from(flat), Int32Array.from(lens), {
          maxNew: M,
          temperature: typeof p.temperature === "number" ? p.temperature : 1,
          topK: typeof p.top_k === "number" && p.top_k > 0 ? p.top_k : 0,
          topP: typeof p.top_p === "number" ? p.top_p : 1,
          seed: 0,
          seeds,
          stop: (p.stop as number[] | undefined) ?? [],
        });
        let b = 0;
        js.forEach((j, q) => {
          const seqs: string[] = [];
          for (let i = 0; i < ks[q]; i++, b++) {
            const n = r.lengths[b];
            const tok = r.tokens.subarray(b * M, b * M + n);
            const lp = r.logprobs.subarray(b * M, b * M + n);
            const reason = r.stopped[b] ? "stop" : "length";
            seqs.push(`{"stop_reason":"${reason}","tokens":[${tok.join(",")}],"logprobs":[${lp.join(",")}]}`);
          }
          finish(j.id, false, `{"sequences":[${seqs.join(",")}],"prompt_logprobs":null}`);
        });
      } catch (e) {
        for (const j of js) finish(j.id, true, (e as Error).message);
      }
    }
  };

  let base: Model | null = null;
  const baseModel = (): Model => {
    base ??= new Model(o.model.config, o.model.params.slice());
    return base;
  };

  const archiveOf = (m: Model): Uint8Array => {
    const tensors = m.table.map((p) => ({ name: p.name, shape: p.shape, data: m.view(p.name) }));
    const st = encodeSafetensors(tensors, { format: "pt" });
    const bytes = new Uint8Array(st.reduce((a, c) => a + c.length, 0));
    let at = 0;
    for (const c of st) {
      bytes.set(c, at);
      at += c.length;
    }
    return tar([
      { name: "./config.json", data: new TextEncoder().encode(JSON.stringify(toHfConfig(m.config))) },
      { name: "./model.safetensors", data: bytes },
    ]);
  };

  const future = (kind: string, body: Json, run: RunState | null) => {
    const id = enqueue(kind, body, run);
    return { future_id: id, status: "pending", request_id: id };
  };

  const post = async (path: string, body: Json, res: ServerResponse): Promise<unknown> => {
    switch (path) {
      case "/api/v1/create_session":
        return { type: "create_session", session_id: `session_${randomUUID().slice(0, 8)}` };
      case "/api/v1/create_model": {
        if (body.base_model !== o.baseModel)
          throw new HttpError(400, `base model ${String(body.base_model)} is not served`);
        const rank = (body.lora_config as Json | undefined)?.rank ?? 0;
        if (rank !== 0) throw new HttpError(400, "this server does full fine-tuning only (lora_config.rank = 0)");
        const id = `model_${randomUUID().slice(0, 8)}`;
        const model = new Model(o.model.config, o.model.params.slice());
        const z = () => new Float32Array(model.params.length);
        const run: RunState = {
          id,
          model,
          grads: z(),
          m: z(),
          v: z(),
          step: 0,
          requests: 0,
          gradsClean: true,
          held: null,
        };
        runs.set(id, run);
        const f = future("create_model", body, run);
        return { model_id: id, base_model: o.baseModel, status: "created", request_id: f.request_id };
      }
      case "/api/v1/get_info": {
        const run = getRun(body);
        return { model_id: run.id, status: "ready", model_data: { base_model: o.baseModel, model_name: o.baseModel } };
      }
      case "/api/v1/forward":
      case "/api/v1/forward_backward":
      case "/api/v1/optim_step":
      case "/api/v1/save_weights":
      case "/api/v1/load_weights":
      case "/api/v1/save_weights_for_sampler": {
        const run = getRun(body);
        const kind = path.slice("/api/v1/".length);
        if (kind === "load_weights" && run.requests > 0)
          throw new HttpError(400, `LoadWeights is not permitted with seq_id ${String(body.seq_id)}`);
        if (kind === "save_weights" && weights.has(`tinker://${run.id}/weights/${String(body.path)}`))
          throw new HttpError(409, `Checkpoint '${String(body.path)}' already exists for model '${run.id}'`);
        run.requests++;
        return future(kind, body, run);
      }
      case "/api/v1/asample":
        return future("sample", body, null);
      case "/api/v1/retrieve_future": {
        const id = String(body.request_id);
        const f = futures.get(id);
        if (!f) throw new HttpError(404, "Future not found");
        if (!f.done) {
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, holdMs);
            f.waiters.push(() => {
              clearTimeout(t);
              resolve();
            });
            res.on("close", () => clearTimeout(t));
          });
        }
        if (!f.done) throw new HttpError(408, "Timeout waiting for result");
        if (f.failed) throw new HttpError(400, f.text);
        return f.text;
      }
      case "/api/v1/telemetry":
        return { status: "accepted" };
      default:
        throw new HttpError(404, "Not Found");
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://x");
    const path = url.pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const send = (status: number, body: string | Uint8Array, type = "application/json", extra = {}) => {
      res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body), ...extra });
      res.end(body);
    };
    try {
      if (req.method === "GET") {
        if (path === "/api/v1/healthz") return send(200, '{"status":"ok"}');
        if (path === "/api/v1/get_server_capabilities")
          return send(200, JSON.stringify({ supported_models: [{ model_name: o.baseModel }] }));
        const m = /^\/api\/v1\/training_runs\/([\w-]+)\/checkpoints\/([\w-]+)\/(archive|download)$/.exec(path);
        if (m) {
          const tarBytes = archives.get(`${m[1]}/${m[2]}`);
          if (!tarBytes) throw new HttpError(404, `Checkpoint not found: ${m[1]}/${m[2]}`);
          if (m[3] === "archive") return send(302, "", "text/plain", { location: `${path.slice(0, -7)}download` });
          return send(200, tarBytes, "application/octet-stream");
        }
        throw new HttpError(404, "Not Found");
      }
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      let body: Json;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Json;
      } catch {
        throw new HttpError(422, "body is not JSON");
      }
      const out = await post(path, body, res);
      if (!res.destroyed) send(200, typeof out === "string" ? out : JSON.stringify(out));
    } catch (e) {
      const status = e instanceof HttpError ? e.status : 500;
      if (!res.destroyed && !res.headersSent) send(status, JSON.stringify({ detail: (e as Error).message }));
    }
  };

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(o.port ?? 0, o.host ?? "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${o.host ?? "127.0.0.1"}:${port}`,
    server,
    runs,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The concatenated token ids of a ModelInput (only encoded_text chunks). */
export function inputTokens(mi: unknown): number[] {
  const chunks = (mi as { chunks?: unknown })?.chunks;
  if (!Array.isArray(chunks)) throw new Error("model_input.chunks must be an array");
  const out: number[] = [];
  for (const c of chunks) {
    const ch = c as { type?: unknown; tokens?: unknown };
    if (ch.type !== undefined && ch.type !== "encoded_text")
      throw new Error(`chunk type ${String(ch.type)} is not supported`);
    if (!Array.isArray(ch.tokens)) throw new Error("an encoded_text chunk needs tokens");
    for (const t of ch.tokens) out.push(t as number);
  }
  return out;
}
