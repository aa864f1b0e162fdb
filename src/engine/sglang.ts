/**
 * SGLang's native server as nrt's sampler (`--engine openai-split --sampler sglang`).
 *
 *   start  → GET /health; GET /model_info (older servers: /get_model_info) → model_path, is_generation
 *   sample → POST /generate with input_ids = each prompt K times and one sampling_params per stream (its own
 *            sampling_seed, stop_token_ids, no_stop_trim, every field explicit), return_logprob →
 *            output_ids and meta_info.output_token_logprobs, [logprob, id, text] triples
 *   score  → POST /generate, max_new_tokens 0, return_logprob, logprob_start_len 0 →
 *            meta_info.input_token_logprobs, triples whose first logprob is null
 *   reload → POST /update_weights_from_disk {model_path} → {success, message}; or POST <path> {model_path}
 */

import { mapLimit } from "../util/map-limit.js";
import { detail, isObj } from "./_http.js";
import { chunkSequences } from "./chunks.js";
import { promptSeed, type Sampled, type SampleParams, type SeqBatch, streamSeed } from "./engine.js";
import { HttpSampler, type SamplerOptions, toSampled } from "./sampler-client.js";

type Json = Record<string, unknown>;
/** streams per /generate request at most */
const MAX_STREAMS = 512;

export class SglangSampler extends HttpSampler {
  constructor(o: SamplerOptions) {
    super("sglang", o);
  }

  /** POST /generate of a batch: one answer per input, in order. */
  private async generate(body: Json, count: number): Promise<Json[]> {
    const path = "/generate";
    const r = await this.http.json("POST", path, body);
    if (r.status !== 200) throw this.fail("POST", path, `HTTP ${r.status}: ${detail(r.text)}`);
    const outs = Array.isArray(r.json) ? r.json : count === 1 && isObj(r.json) ? [r.json] : null;
    if (!outs || outs.length !== count || !outs.every(isObj))
      throw this.fail("POST", path, `expected ${count} answers, got ${r.text.slice(0, 200)}`);
    return outs as Json[];
  }

  async start(): Promise<{ modelPath: string | null }> {
    const h = await this.http.json("GET", "/health");
    if (h.status !== 200) throw this.fail("GET", "/health", `not healthy: HTTP ${h.status} ${detail(h.text)}`);
    let info = await this.http.json("GET", "/model_info");
    let path = "/model_info";
    if (info.status === 404) {
      path = "/get_model_info";
      info = await this.http.json("GET", path);
    }
    if (info.status !== 200 || !isObj(info.json))
      throw this.fail("GET", path, `no model info: HTTP ${info.status} ${detail(info.text)}`);
    if (info.json.is_generation === false) throw this.fail("GET", path, "the server's model is not a generation model");
    return { modelPath: typeof info.json.model_path === "string" ? info.json.model_path : null };
  }

  async sample(prompts: readonly (readonly number[])[], p: SampleParams): Promise<Sampled[][]> {
    if (p.maxTokens === 0)
      return prompts.map(() =>
        Array.from({ length: p.k }, () => ({ tokens: [], stopId: -1, logprobs: [], entropy: null })),
      );
    const stop = new Set(p.stop);
    const perRequest = Math.max(1, Math.floor(MAX_STREAMS / p.k));
    const starts = Array.from({ length: Math.ceil(prompts.length / perRequest) }, (_, i) => i * perRequest);
    const parts = await mapLimit(starts, this.o.concurrency, async (g0) => {
      const gs = prompts.slice(g0, g0 + perRequest);
      const ids: number[][] = [];
      const params: Json[] = [];
      gs.forEach((prompt, i) => {
        for (let k = 0; k < p.k; k++) {
          ids.push([...prompt]);
          params.push({
            max_new_tokens: p.maxTokens,
            temperature: p.temperature,
            top_p: p.topP,
            top_k: p.topK > 0 ? p.topK : -1,
            min_p: 0,
            min_new_tokens: 0,
            repetition_penalty: 1,
            presence_penalty: 0,
            frequency_penalty: 0,
            stop_token_ids: [...p.stop],
            ignore_eos: false,
            skip_special_tokens: false,
            no_stop_trim: true,
            sampling_seed: streamSeed(promptSeed(p.seed, g0 + i), k),
          });
        }
      });
      const outs = await this.generate(
        { input_ids: ids, sampling_params: params, return_logprob: true, logprob_start_len: -1 },
        ids.length,
      );
      return gs.map((_, i) =>
        Array.from({ length: p.k }, (_, k) =>
          this.sampled(outs[i * p.k + k], stop, p.maxTokens, `prompt ${g0 + i} sample ${k}`),
        ),
      );
    });
    return parts.flat();
  }

  private sampled(o: Json, stop: Set<number>, max: number, what: string): Sampled {
    const fail = (m: string) => this.fail("POST", "/generate", m);
    const meta = isObj(o.meta_info) ? o.meta_info : null;
    const triples = meta?.output_token_logprobs;
    if (!Array.isArray(triples)) throw fail(`${what}: no meta_info.output_token_logprobs (nrt asks return_logprob)`);
    const logprobs: number[] = [];
    const fromTriples: number[] = [];
    for (const [i, t] of triples.entries()) {
      if (!Array.isArray(t) || typeof t[0] !== "number" || typeof t[1] !== "number")
        throw fail(`${what}: output_token_logprobs[${i}] is ${JSON.stringify(t)}, not [logprob, id, text]`);
      logprobs.push(t[0]);
      fromTriples.push(t[1]);
    }
    const tokens = Array.isArray(o.output_ids) ? (o.output_ids as unknown[]) : fromTriples;
    if (!tokens.every((t) => typeof t === "number")) throw fail(`${what}: output_ids is not a list of token ids`);
    const fr = meta?.finish_reason;
    const type = isObj(fr) ? fr.type : null;
    if (type !== "stop" && type !== "length") throw fail(`${what}: finish_reason ${JSON.stringify(fr)}`);
    const matched = isObj(fr) && typeof fr.matched === "number" ? fr.matched : null;
    return toSampled(tokens as number[], logprobs, { stopped: type === "stop", matched }, stop, max, fail, what);
  }

  async score(batch: SeqBatch): Promise<Float32Array> {
    const fail = (m: string) => this.fail("POST", "/generate", m);
    const out = new Float32Array(batch.tokens.length);
    await mapLimit(chunkSequences(batch.lens, this.o.chunkTokens, MAX_STREAMS), this.o.concurrency, async (c) => {
      const seqs: number[][] = [];
      for (let s = 0, at = c.at; s < c.count; s++) {
        const n = batch.lens[c.first + s];
        seqs.push(Array.from(batch.tokens.subarray(at, at + n)));
        at += n;
      }
      const outs = await this.generate(
        {
          input_ids: seqs,
          sampling_params: { max_new_tokens: 0, temperature: 0 },
          return_logprob: true,
          logprob_start_len: 0,
        },
        seqs.length,
      );
      let at = c.at;
      for (const [s, seq] of seqs.entries()) {
        const what = `sequence ${c.first + s}`;
        const meta = isObj(outs[s].meta_info) ? (outs[s].meta_info as Json) : {};
        const tr = meta.input_token_logprobs;
        if (!Array.isArray(tr) || tr.length !== seq.length)
          throw fail(
            `${what}: input_token_logprobs has ${Array.isArray(tr) ? tr.length : "no"} entries for ${seq.length} tokens`,
          );
        for (let t = 0; t < seq.length; t++) {
          const e = tr[t];
          if (!Array.isArray(e) || e[1] !== seq[t])
            throw fail(`${what}, token ${t}: expected [logprob, ${seq[t]}, text], got ${JSON.stringify(e)}`);
          if (t === 0) {
            if (e[0] !== null)
              throw fail(`${what}: the first input logprob should be null, got ${JSON.stringify(e[0])}`);
            continue;
          }
          if (typeof e[0] !== "number") throw fail(`${what}, token ${t}: logprob ${JSON.stringify(e[0])}`);
          out[at + t] = e[0];
        }
        at += seq.length;
      }
    });
    return out;
  }

  async reload(dir: string): Promise<void> {
    if (this.o.reload === "none") return;
    const path = this.o.reload === "auto" ? "/update_weights_from_disk" : this.o.reload;
    const r = await this.http.json("POST", path, { model_path: dir });
    if (r.status !== 200 || !isObj(r.json)) throw this.fail("POST", path, `HTTP ${r.status}: ${detail(r.text)}`);
    if (r.json.success === false)
      throw this.fail("POST", path, `the server did not load ${dir}: ${String(r.json.message ?? r.text)}`);
  }
}
