/**
 * nrt's client of the sampling server of `--engine openai-split`: vLLM (`/v1/completions`) or SGLang (`/generate`).
 * The server samples, scores teacher-forced sequences, and reloads weights that nrt wrote to a model directory. Token ids go both ways (nothing
 * is re-tokenized), every sampling field is sent explicitly, and sampling stops on token ids.
 */
import { HttpClient } from "./_http.js";
import { EngineError, type Sampled, type SampleParams, type SeqBatch } from "./engine.js";

/** What the split engine asks of a sampling server, through its client. */
export interface SamplerClient {
  /** "vllm" or "sglang" */
  readonly kind: string;
  /** the server's base URL */
  readonly where: string;
  /** Checks the server and its model; returns where the server says its model lives (for the reload check). */
  start(): Promise<{ modelPath: string | null }>;
  /** K samples after each prompt, result[g][k]; stream k of prompt g is seeded from promptSeed(p.seed, g). */
  sample(prompts: readonly (readonly number[])[], p: SampleParams): Promise<Sampled[][]>;
  /** Teacher-forced log p of every token of `batch` (0 at each first token). */
  score(batch: SeqBatch): Promise<Float32Array>;
  /** Makes the server load the weights now in `dir`. */
  reload(dir: string): Promise<void>;
}

export interface SamplerOptions {
  url: string;
  timeoutMs: number;
  retries: number;
  backoffMs: number;
  /** requests in flight at once */
  concurrency: number;
  /** most tokens per scoring request */
  chunkTokens: number;
  /** vLLM: the served model name ("" takes the server's only one) */
  servedModel: string;
  /** "auto", "none", or a path to POST {model_path} to */
  reload: string;
}

/** What the vLLM and SGLang clients share: the HTTP client, and errors naming the engine and the endpoint. */
export abstract class HttpSampler implements SamplerClient {
  readonly where: string;
  protected readonly http: HttpClient;
  /** "openai-split (vllm)" */
  protected readonly engine: string;

  constructor(
    readonly kind: "vllm" | "sglang",
    readonly o: SamplerOptions,
  ) {
    this.where = o.url;
    this.engine = `openai-split (${kind})`;
    this.http = new HttpClient({
      engine: this.engine,
      base: o.url,
      timeoutMs: o.timeoutMs,
      retries: o.retries,
      backoffMs: o.backoffMs,
    });
  }

  protected fail(method: "GET" | "POST", path: string, message: string): EngineError {
    return new EngineError(this.engine, this.http.endpoint(method, path), message);
  }

  abstract start(): Promise<{ modelPath: string | null }>;
  abstract sample(prompts: readonly (readonly number[])[], p: SampleParams): Promise<Sampled[][]>;
  abstract score(batch: SeqBatch): Promise<Float32Array>;
  abstract reload(dir: string): Promise<void>;
}

/** How a server said one sample ended. */
export interface Ending {
  /** ended by a stop token (rather than the length limit) */
  stopped: boolean;
  /** the stop token the server reports having matched, where it says */
  matched: number | null;
}

/**
 * A sample as nrt reads it: the stop id split off. Servers differ on whether the stop token is in the returned ids
 * (vLLM keeps it; SGLang trims it unless no_stop_trim): both are read, and the ids must agree with what the server
 * says ended the sample.
 */
export function toSampled(
  tokens: number[],
  logprobs: number[],
  end: Ending,
  stop: ReadonlySet<number>,
  max: number,
  fail: (message: string) => EngineError,
  what: string,
): Sampled {
  if (logprobs.length !== tokens.length)
    throw fail(`${what}: ${logprobs.length} logprobs for ${tokens.length} tokens (nrt asks for logprobs)`);
  if (tokens.length > max) throw fail(`${what}: ${tokens.length} tokens, more than max_tokens ${max}`);
  const last = tokens[tokens.length - 1];
  if (tokens.length > 0 && stop.has(last))
    return { tokens: tokens.slice(0, -1), stopId: last, logprobs: logprobs.slice(0, -1), entropy: null };
  if (end.stopped) {
    if (end.matched !== null && stop.has(end.matched)) return { tokens, stopId: end.matched, logprobs, entropy: null };
    throw fail(
      `${what}: the server says it stopped, but neither the last token (${last ?? "none"}) nor the matched stop ` +
        `(${end.matched}) is one of nrt's stop ids: nrt needs the stop id to tell ⟨answer_start⟩ from other ends`,
    );
  }
  return { tokens, stopId: -1, logprobs, entropy: null };
}

/** A list of numbers, or an error naming `what`. */
export function numbers(x: unknown, what: string, fail: (m: string) => EngineError): number[] {
  if (!Array.isArray(x) || !x.every((v) => typeof v === "number"))
    throw fail(`${what}: expected a list of numbers, got ${JSON.stringify(x)?.slice(0, 120)}`);
  return x as number[];
}
