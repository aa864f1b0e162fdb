/**
 * vLLM's OpenAI-compatible server as nrt's sampler (`--engine openai-split --sampler vllm`).
 *
 *   start  → GET /health; GET /v1/models (the served name, and `root`, where the server loaded its model from)
 *   sample → POST /v1/completions, one request per prompt: token-id prompt, n = K, seed, stop_token_ids, logprobs,
 *            return_token_ids, and every sampling field explicit (vLLM fills absent ones from generation_config.json)
 *   score  → POST /v1/completions with a list of token-id prompts, max_tokens 1, prompt_logprobs 0: per prompt a
 *            list whose first entry is null and the others dicts keyed by token id {logprob, rank, decoded_token}
 *   reload → POST /collective_rpc {"method": "reload_weights"} then POST /reset_prefix_cache (both need the server
 *            started with VLLM_SERVER_DEV_MODE=1); or POST <path> {model_path} for a server with its own route
 */

import { mapLimit } from "../util/map-limit.js";
import { detail, isObj } from "./_http.js";
import { chunkSequences } from "./chunks.js";
import { promptSeed, type Sampled, type SampleParams, type SeqBatch } from "./engine.js";
import { HttpSampler, numbers, type SamplerOptions, toSampled } from "./sampler-client.js";

type Json = Record<string, unknown>;

export class VllmSampler extends HttpSampler {
  /** the served model name, from /v1/models */
  private model = "";

  constructor(o: SamplerOptions) {
    super("vllm", o);
  }

  private async post(path: string, body: unknown): Promise<Json> {
    const r = await this.http.json("POST", path, body);
    if (r.status !== 200 || !isObj(r.json)) throw this.fail("POST", path, `HTTP ${r.status}: ${detail(r.text)}`);
    return r.json;
  }

  async start(): Promise<{ modelPath: string | null }> {
    const h = await this.http.json("GET", "/health");
    if (h.status !== 200) throw this.fail("GET", "/health", `not healthy: HTTP ${h.status} ${detail(h.text)}`);
    const r = await this.http.json("GET", "/v1/models");
    const data = isObj(r.json) && Array.isArray(r.json.data) ? r.json.data.filter(isObj) : null;
    if (r.status !== 200 || !data)
      throw this.fail("GET", "/v1/models", `no model list: HTTP ${r.status} ${detail(r.text)}`);
    const ids = data.map((m) => String(m.id));
    const pick = this.o.servedModel
      ? data.find((m) => m.id === this.o.servedModel)
      : data.length === 1
        ? data[0]
        : null;
    if (!pick)
      throw this.fail(
        "GET",
        "/v1/models",
        this.o.servedModel
          ? `serves ${ids.join(", ")}, not ${this.o.servedModel}`
          : `serves ${ids.join(", ") || "nothing"}: choose one with --sampler-model`,
      );
    this.model = String(pick.id);
    return { modelPath: typeof pick.root === "string" ? pick.root : null };
  }

  async sample(prompts: readonly (readonly number[])[], p: SampleParams): Promise<Sampled[][]> {
    if (p.maxTokens === 0)
      return prompts.map(() =>
        Array.from({ length: p.k }, () => ({ tokens: [], stopId: -1, logprobs: [], entropy: null })),
      );
    const path = "/v1/completions";
    const stop = new Set(p.stop);
    return mapLimit(prompts, this.o.concurrency, async (prompt, g) => {
      const r = await this.post(path, {
        model: this.model,
        prompt: [...prompt],
        n: p.k,
        max_tokens: p.maxTokens,
        temperature: p.temperature,
        top_p: p.topP,
        top_k: p.topK > 0 ? p.topK : -1,
        min_p: 0,
        seed: promptSeed(p.seed, g),
        stop_token_ids: [...p.stop],
        ignore_eos: false,
        min_tokens: 0,
        repetition_penalty: 1,
        presence_penalty: 0,
        frequency_penalty: 0,
        logprobs: 0,
        echo: false,
        stream: false,
        skip_special_tokens: false,
        return_token_ids: true,
        return_tokens_as_token_ids: true,
      });
      const choices = Array.isArray(r.choices) ? r.choices.filter(isObj) : [];
      if (choices.length !== p.k)
        throw this.fail("POST", path, `prompt ${g}: expected ${p.k} choices, got ${JSON.stringify(r).slice(0, 200)}`);
      choices.sort((a, b) => Number(a.index) - Number(b.index));
      return choices.map((c, k) => this.sampled(c, stop, p.maxTokens, `prompt ${g} choice ${k}`));
    });
  }

  private sampled(c: Json, stop: Set<number>, max: number, what: string): Sampled {
    const fail = (m: string) => this.fail("POST", "/v1/completions", m);
    const lp = isObj(c.logprobs) ? c.logprobs : null;
    if (!lp) throw fail(`${what}: no logprobs in the answer`);
    const logprobs = numbers(lp.token_logprobs, `${what}: logprobs.token_logprobs`, fail);
    // token ids: `token_ids` (return_token_ids), else the "token_id:N" strings of return_tokens_as_token_ids
    let tokens: number[];
    if (Array.isArray(c.token_ids)) tokens = numbers(c.token_ids, `${what}: token_ids`, fail);
    else if (Array.isArray(lp.tokens))
      tokens = lp.tokens.map((t) => {
        const m = typeof t === "string" ? /^token_id:(\d+)$/.exec(t) : null;
        if (!m) throw fail(`${what}: a token ${JSON.stringify(t)} that is no "token_id:N" and no token_ids given`);
        return Number(m[1]);
      });
    else throw fail(`${what}: neither token_ids nor logprobs.tokens in the answer`);
    const reason = c.finish_reason;
    if (reason !== "stop" && reason !== "length") throw fail(`${what}: finish_reason ${JSON.stringify(reason)}`);
    const matched = typeof c.stop_reason === "number" ? c.stop_reason : null;
    return toSampled(tokens, logprobs, { stopped: reason === "stop", matched }, stop, max, fail, what);
  }

  async score(batch: SeqBatch): Promise<Float32Array> {
    const path = "/v1/completions";
    const fail = (m: string) => this.fail("POST", path, m);
    const out = new Float32Array(batch.tokens.length);
    const chunks = chunkSequences(batch.lens, this.o.chunkTokens);
    await mapLimit(chunks, this.o.concurrency, async (c) => {
      const seqs: number[][] = [];
      for (let s = 0, at = c.at; s < c.count; s++) {
        const n = batch.lens[c.first + s];
        seqs.push(Array.from(batch.tokens.subarray(at, at + n)));
        at += n;
      }
      const r = await this.post(path, {
        model: this.model,
        prompt: seqs,
        n: 1,
        max_tokens: 1,
        temperature: 0,
        seed: 0,
        prompt_logprobs: 0,
        echo: false,
        stream: false,
        skip_special_tokens: false,
      });
      const choices = Array.isArray(r.choices) ? r.choices.filter(isObj) : [];
      if (choices.length !== seqs.length)
        throw fail(`expected ${seqs.length} choices (one per prompt), got ${choices.length}`);
      choices.sort((a, b) => Number(a.index) - Number(b.index));
      let at = c.at;
      for (const [s, seq] of seqs.entries()) {
        const what = `sequence ${c.first + s}`;
        const pl = choices[s].prompt_logprobs;
        if (!Array.isArray(pl) || pl.length !== seq.length)
          throw fail(
            `${what}: prompt_logprobs has ${Array.isArray(pl) ? pl.length : "no"} entries for ${seq.length} tokens`,
          );
        if (pl[0] !== null)
          throw fail(`${what}: the first prompt logprob should be null, got ${JSON.stringify(pl[0])}`);
        for (let t = 1; t < seq.length; t++) {
          const entry = isObj(pl[t]) ? pl[t][String(seq[t])] : undefined;
          const v = isObj(entry) ? entry.logprob : undefined;
          if (typeof v !== "number" && v !== "-inf")
            throw fail(
              `${what}, token ${t}: no logprob for token id ${seq[t]} in ${JSON.stringify(pl[t])?.slice(0, 120)}`,
            );
          out[at + t] = typeof v === "number" ? v : Number.NEGATIVE_INFINITY;
        }
        at += seq.length;
      }
    });
    return out;
  }

  async reload(dir: string): Promise<void> {
    if (this.o.reload === "none") return;
    if (this.o.reload !== "auto") {
      await this.post(this.o.reload, { model_path: dir });
      return;
    }
    // vLLM reloads from the path it was started on (its model_config.model): the directory nrt just rewrote
    const rpc = await this.http.json("POST", "/collective_rpc", { method: "reload_weights" });
    if (rpc.status === 404)
      throw this.fail(
        "POST",
        "/collective_rpc",
        "HTTP 404: start vLLM with VLLM_SERVER_DEV_MODE=1 (the route reloads weights), or give --sampler-reload PATH",
      );
    if (rpc.status !== 200) throw this.fail("POST", "/collective_rpc", `HTTP ${rpc.status}: ${detail(rpc.text)}`);
    const r = await this.http.json("POST", "/reset_prefix_cache");
    if (r.status !== 200) throw this.fail("POST", "/reset_prefix_cache", `HTTP ${r.status}: ${detail(r.text)}`);
  }
}
