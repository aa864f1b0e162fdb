/**
 * A stand-in for SGLang's native HTTP server, computing with nrt's native engine, for tests and the loopback
 * benchmark. It answers the requests nrt sends as SGLang (v0.4–0.5) does:
 *   GET  /health                    → 200, empty body
 *   GET  /model_info                → {model_path, tokenizer_path, is_generation, …} (older servers:
 *                                     /get_model_info; `legacyInfo` serves only that one)
 *   POST /generate                  → input_ids (one list, or a list of lists), sampling_params (one, or one per
 *                                     input), return_logprob, logprob_start_len; one answer, or a list of them:
 *                                     {text, output_ids, meta_info: {id, finish_reason: {type: "stop", matched} |
 *                                     {type: "length", length}, prompt_tokens, completion_tokens, cached_tokens,
 *                                     input_token_logprobs, output_token_logprobs}}, the logprobs as
 *                                     [logprob, token id, text] triples (text null), the first input logprob null
 *   POST /update_weights_from_disk  → {model_path}: reloads that directory; {success, message, num_paused_requests}
 * A stream with sampling_seed s draws from nrt's stream seed s. The matched stop token stays in output_ids when
 * no_stop_trim is true, and is trimmed otherwise (`alwaysTrim` trims it regardless, as some versions do).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { HttpError, type Json, ServedModel, type StubServer, serveJson } from "./served-model.js";

export interface SglangStubOptions {
  dir: string;
  /** answer only /get_model_info */
  legacyInfo?: boolean;
  /** trim the matched stop token from output_ids even with no_stop_trim */
  alwaysTrim?: boolean;
}

export interface SglangStub extends StubServer {
  served: ServedModel;
}

const isObj = (x: unknown): x is Json => typeof x === "object" && x !== null && !Array.isArray(x);

export async function startSglangStub(o: SglangStubOptions): Promise<SglangStub> {
  const served = new ServedModel(o.dir);
  let nextId = 1;

  const generate = (b: Json): unknown => {
    const single = Array.isArray(b.input_ids) && b.input_ids.every((t) => typeof t === "number");
    const inputs = (single ? [b.input_ids] : b.input_ids) as unknown[];
    if (!Array.isArray(inputs) || !inputs.every((p) => Array.isArray(p) && p.every((t) => typeof t === "number")))
      throw new HttpError(400, { error: { message: "input_ids must be a list of ids or a list of such lists" } });
    const ids = inputs as number[][];
    const sp = Array.isArray(b.sampling_params) ? b.sampling_params : ids.map(() => b.sampling_params ?? {});
    if (sp.length !== ids.length || !sp.every(isObj))
      throw new HttpError(400, { error: { message: "sampling_params must be one dict or one per input" } });
    const params = sp as Json[];
    const num = (p: Json, k: string, d: number) => (typeof p[k] === "number" ? (p[k] as number) : d);
    // one native batch per distinct (max_new_tokens, temperature, top_k, top_p, stop) setting
    const outs: Json[] = new Array(ids.length);
    const groups = new Map<string, number[]>();
    params.forEach((p, i) => {
      const key = JSON.stringify([p.max_new_tokens, p.temperature, p.top_k, p.top_p, p.stop_token_ids]);
      groups.set(key, [...(groups.get(key) ?? []), i]);
    });
    for (const members of groups.values()) {
      const p = params[members[0]];
      const stop = Array.isArray(p.stop_token_ids) ? (p.stop_token_ids as number[]) : [];
      const streams = served.generate(
        members.map((i) => ids[i]),
        members.map((i) => num(params[i], "sampling_seed", Math.floor(Math.random() * 2 ** 31))),
        {
          maxNew: num(p, "max_new_tokens", 128),
          temperature: num(p, "temperature", 1),
          topK: num(p, "top_k", -1),
          topP: num(p, "top_p", 1),
          stop,
        },
      );
      members.forEach((i, j) => {
        const s = streams[j];
        const matched = s.stopped ? s.tokens[s.tokens.length - 1] : null;
        const trim = s.stopped && (o.alwaysTrim || params[i].no_stop_trim !== true);
        const tokens = trim ? s.tokens.slice(0, -1) : s.tokens;
        const lps = trim ? s.logprobs.slice(0, -1) : s.logprobs;
        outs[i] = { text: "", output_ids: tokens, meta: { matched, n: s.tokens.length, tokens, lps } };
      });
    }
    const start = typeof b.logprob_start_len === "number" ? b.logprob_start_len : -1;
    const wantInput = b.return_logprob === true && start >= 0;
    const scored = wantInput ? served.score(ids) : [];
    const answers = outs.map((x, i) => {
      const m = x.meta as { matched: number | null; n: number; tokens: number[]; lps: number[] };
      return {
        text: "",
        output_ids: x.output_ids,
        meta_info: {
          id: `${nextId++}`,
          finish_reason: m.matched !== null ? { type: "stop", matched: m.matched } : { type: "length", length: m.n },
          prompt_tokens: ids[i].length,
          completion_tokens: m.n,
          cached_tokens: 0,
          ...(b.return_logprob === true && {
            input_token_logprobs: wantInput
              ? ids[i].slice(start).map((t, j) => [start + j === 0 ? null : scored[i][start + j], t, null])
              : [],
            output_token_logprobs: m.tokens.map((t, j) => [m.lps[j], t, null]),
          }),
        },
      };
    });
    return single ? answers[0] : answers;
  };

  const info = () => ({
    model_path: served.dir,
    tokenizer_path: served.dir,
    is_generation: true,
    preferred_sampling_params: null,
    weight_version: String(served.loads),
  });

  const stub = await serveJson((method, path, body) => {
    const b = isObj(body) ? body : {};
    if (method === "GET" && path === "/health") return undefined;
    if (method === "GET" && path === "/model_info" && !o.legacyInfo) return info();
    if (method === "GET" && path === "/get_model_info") return info();
    if (method === "POST" && path === "/generate") return generate(b);
    if (method === "POST" && path === "/update_weights_from_disk") {
      const dir = String(b.model_path ?? "");
      if (!existsSync(join(dir, "config.json")))
        throw new HttpError(400, { success: false, message: `Failed to get weights iterator: ${dir} not found` });
      served.load(dir);
      return { success: true, message: "Succeeded to update model weights.", num_paused_requests: 0 };
    }
    throw new HttpError(404, { detail: "Not Found" });
  });
  return { ...stub, served };
}
