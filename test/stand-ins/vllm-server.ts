/**
 * A stand-in for vLLM's OpenAI-compatible server, computing with nrt's native engine, for tests and the loopback
 * benchmark. It answers the requests nrt sends as vLLM (v0.10–0.11, V1 engine) does:
 *   GET  /health                 → 200, empty body
 *   GET  /v1/models              → {object: "list", data: [{id, object: "model", root: <model path>, max_model_len}]}
 *   POST /v1/completions         → prompt as token ids (one list, or a list of lists), n, seed, stop_token_ids,
 *                                  logprobs, prompt_logprobs, return_token_ids, return_tokens_as_token_ids; choices
 *                                  with logprobs {tokens, token_logprobs, top_logprobs, text_offset}, finish_reason,
 *                                  stop_reason (the stop token id; null for EOS), token_ids (the stop id included)
 *                                  and prompt_logprobs: [null, {"<id>": {logprob, rank, decoded_token}}, …]
 *   POST /collective_rpc         → {method: "reload_weights"}: reloads the path it was started on (dev mode only)
 *   POST /reset_prefix_cache     → 200 (dev mode only)
 * Errors come back as vLLM's {object: "error", message, type, code}. Choice i of prompt p is choices[p·n + i].
 * Like vLLM's continuous batching, requests that arrive together (within 5 ms of each other) with the same sampling
 * settings are generated as one native batch; each stream keeps its own seed, so batching changes nothing drawn.
 * Sample i of a request seeded s draws from nrt's stream streamSeed(s, i), so it matches nrt's in-process sampler
 * (real vLLM seeds its n child requests its own way). `rank` is not computed (null): nrt does not read it.
 */

import { streamSeed } from "../../src/engine/engine.js";
import {
  HttpError,
  type Json,
  ServedModel,
  type Stream,
  type StreamParams,
  type StubServer,
  serveJson,
} from "./served-model.js";

export interface VllmStubOptions {
  /** the model directory the server is "started on" */
  dir: string;
  /** --served-model-name */
  name: string;
  /** VLLM_SERVER_DEV_MODE=1: /collective_rpc and /reset_prefix_cache exist */
  devMode?: boolean;
  /** reload_weights answers success but keeps the old weights (vLLM issue 32718's symptom) */
  staleReload?: boolean;
  /** the EOS id: a stream that ends on it gets stop_reason null, as in vLLM */
  eosId?: number;
}

export interface VllmStub extends StubServer {
  served: ServedModel;
}

const isObj = (x: unknown): x is Json => typeof x === "object" && x !== null && !Array.isArray(x);
const vllmError = (status: number, message: string, type = "BadRequestError") =>
  new HttpError(status, { object: "error", message, type, param: null, code: status });

export async function startVllmStub(o: VllmStubOptions): Promise<VllmStub> {
  const served = new ServedModel(o.dir);
  let nextId = 1;

  /** a request's streams: its prompts, n times each, with their seeds, and the settings they share */
  const plan = (b: Json) => {
    if (b.model !== o.name) throw vllmError(404, `The model \`${String(b.model)}\` does not exist.`, "NotFoundError");
    const prompts = tokenPrompts(b.prompt);
    const n = typeof b.n === "number" ? b.n : 1;
    const max = typeof b.max_tokens === "number" ? b.max_tokens : 16;
    if (max < 1) throw vllmError(400, "max_tokens must be at least 1, got 0.");
    const stop = Array.isArray(b.stop_token_ids) ? (b.stop_token_ids as number[]) : [];
    if (o.eosId !== undefined && b.ignore_eos !== true && !stop.includes(o.eosId)) stop.push(o.eosId);
    const seed = typeof b.seed === "number" ? b.seed : Math.floor(Math.random() * 2 ** 31);
    const params: StreamParams = {
      maxNew: max,
      temperature: typeof b.temperature === "number" ? b.temperature : 1,
      topK: typeof b.top_k === "number" ? b.top_k : 0,
      topP: typeof b.top_p === "number" ? b.top_p : 1,
      stop,
    };
    return {
      prompts,
      n,
      params,
      inputs: prompts.flatMap((p) => Array.from({ length: n }, () => p)),
      seeds: prompts.flatMap(() => Array.from({ length: n }, (_, i) => streamSeed(seed, i))),
    };
  };

  type Pending = { b: Json; plan: ReturnType<typeof plan>; done: (r: Json | Error) => void };
  let queue: Pending[] = [];
  const drain = () => {
    const batch = queue;
    queue = [];
    const groups = new Map<string, Pending[]>();
    for (const q of batch) {
      const key = JSON.stringify(q.plan.params);
      groups.set(key, [...(groups.get(key) ?? []), q]);
    }
    for (const members of groups.values()) {
      try {
        const streams = served.generate(
          members.flatMap((q) => q.plan.inputs),
          members.flatMap((q) => q.plan.seeds),
          members[0].plan.params,
        );
        let at = 0;
        for (const q of members) {
          q.done(answer(q.b, q.plan, streams.slice(at, at + q.plan.inputs.length)));
          at += q.plan.inputs.length;
        }
      } catch (e) {
        for (const q of members) q.done(e as Error);
      }
    }
  };
  // a batch is run once no request has arrived for 5 ms, or 50 ms after its first one
  let timer: NodeJS.Timeout | null = null;
  let first = 0;
  const completions = (b: Json): Promise<Json> => {
    const p = plan(b);
    return new Promise((resolve, reject) => {
      if (queue.length === 0) first = performance.now();
      queue.push({ b, plan: p, done: (r) => (r instanceof Error ? reject(r) : resolve(r)) });
      if (timer) clearTimeout(timer);
      const wait = Math.max(0, Math.min(5, first + 50 - performance.now()));
      timer = setTimeout(() => {
        timer = null;
        drain();
      }, wait);
    });
  };

  const answer = (b: Json, { prompts, n }: ReturnType<typeof plan>, streams: Stream[]): Json => {
    const asIds = b.return_tokens_as_token_ids === true;
    const wantPrompt = typeof b.prompt_logprobs === "number";
    const wantLogprobs = typeof b.logprobs === "number";
    const scored = wantPrompt ? served.score(prompts) : [];
    const choices = streams.map((s, c) => {
      const p = Math.floor(c / n);
      const last = s.tokens[s.tokens.length - 1];
      return {
        index: c,
        text: "",
        logprobs: wantLogprobs
          ? {
              text_offset: s.tokens.map(() => 0),
              token_logprobs: s.logprobs,
              tokens: s.tokens.map((t) => (asIds ? `token_id:${t}` : `<${t}>`)),
              top_logprobs: s.tokens.map((t, i) => ({ [asIds ? `token_id:${t}` : `<${t}>`]: s.logprobs[i] })),
            }
          : null,
        finish_reason: s.stopped ? "stop" : "length",
        stop_reason: s.stopped && last !== o.eosId ? last : null,
        ...(b.return_token_ids === true && { token_ids: s.tokens, prompt_token_ids: prompts[p] }),
        prompt_logprobs: wantPrompt
          ? prompts[p].map((t, i) =>
              i === 0 ? null : { [t]: { logprob: scored[p][i], rank: null, decoded_token: `<${t}>` } },
            )
          : null,
      };
    });
    const completion = streams.reduce((a, s) => a + s.tokens.length, 0);
    const promptTokens = prompts.reduce((a, p) => a + p.length, 0);
    return {
      id: `cmpl-${nextId++}`,
      object: "text_completion",
      created: Math.floor(Date.now() / 1000),
      model: o.name,
      choices,
      usage: { prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion },
    };
  };

  const stub = await serveJson((method, path, body) => {
    const b = isObj(body) ? body : {};
    if (method === "GET" && path === "/health") return undefined;
    if (method === "GET" && path === "/v1/models")
      return {
        object: "list",
        data: [{ id: o.name, object: "model", owned_by: "vllm", root: served.dir, max_model_len: 4096 }],
      };
    if (method === "POST" && path === "/v1/completions") return completions(b);
    if (method === "POST" && o.devMode && path === "/collective_rpc") {
      if (b.method !== "reload_weights") throw new HttpError(500, { error: `no method ${String(b.method)}` });
      if (!o.staleReload) served.load(served.dir);
      return { results: [null] };
    }
    if (method === "POST" && o.devMode && path === "/reset_prefix_cache") return undefined;
    throw new HttpError(404, { detail: "Not Found" });
  });
  return { ...stub, served };
}

/** vLLM's token-id prompt forms: [ids] or [[ids], …]. */
function tokenPrompts(x: unknown): number[][] {
  if (Array.isArray(x) && x.length > 0 && x.every((t) => typeof t === "number")) return [x as number[]];
  if (Array.isArray(x) && x.length > 0 && x.every((p) => Array.isArray(p) && p.every((t) => typeof t === "number")))
    return x as number[][];
  throw vllmError(400, "prompt must be a list of token ids or a list of such lists (nrt never sends text)");
}
