/**
 * A JSON-over-HTTP client for remote engines: a timeout on every attempt, bounded retries with exponential back-off
 * for what may pass (connection refused or dropped, timeouts, 5xx, 429, a 2xx body that is not JSON), and errors
 * that name the engine, the endpoint and what came back. Other 4xx answers are returned to the caller, which knows
 * what they mean in its protocol (e.g. 408 = "still pending" for Tinker's retrieve_future).
 */
import { EngineError } from "./engine.js";

export interface HttpOptions {
  /** engine name, for errors */
  engine: string;
  /** base URL, e.g. http://127.0.0.1:8000 */
  base: string;
  /** per attempt */
  timeoutMs: number;
  /** attempts after the first */
  retries: number;
  /** first back-off; doubled per retry, capped at 30 s */
  backoffMs: number;
}

export interface HttpReply {
  status: number;
  /** the parsed JSON body (null when the body was empty) */
  json: unknown;
  /** the raw body, for messages */
  text: string;
}

const clip = (s: string, n = 300): string => (s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class HttpClient {
  constructor(readonly o: HttpOptions) {
    this.o.base = o.base.replace(/\/+$/, "");
  }

  /** where `path` is, for messages */
  endpoint(method: string, path: string): string {
    return `${method} ${this.o.base}${path}`;
  }

  /**
   * One JSON request with retries. `body` may be given pre-serialised (a string) to avoid a second pass over large
   * arrays. Returns any 2xx or non-retryable 4xx reply; throws an EngineError once the retries are spent.
   */
  async json(method: "GET" | "POST", path: string, body?: unknown): Promise<HttpReply> {
    const where = this.endpoint(method, path);
    const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    let last = "";
    for (let attempt = 0; attempt <= this.o.retries; attempt++) {
      if (attempt > 0) await sleep(Math.min(30_000, this.o.backoffMs * 2 ** (attempt - 1)));
      let res: Response;
      let text: string;
      try {
        res = await fetch(`${this.o.base}${path}`, {
          method,
          headers: payload === undefined ? { accept: "application/json" } : { "content-type": "application/json" },
          body: payload,
          signal: AbortSignal.timeout(this.o.timeoutMs),
        });
        text = await res.text();
      } catch (e) {
        last = describeFetchError(e, this.o.timeoutMs);
        continue;
      }
      if (res.status >= 500 || res.status === 429) {
        last = `HTTP ${res.status}: ${clip(text) || "(empty body)"}`;
        continue;
      }
      let json: unknown = null;
      if (text.trim()) {
        try {
          json = JSON.parse(text);
        } catch {
          last = `HTTP ${res.status} with a body that is not JSON: ${JSON.stringify(clip(text, 120))}`;
          if (res.ok) continue;
          json = null; // a 4xx with a text body: the caller reads `text`
        }
      }
      return { status: res.status, json, text };
    }
    const tries = this.o.retries + 1;
    throw new EngineError(this.o.engine, where, `${last} (gave up after ${tries} attempt${tries > 1 ? "s" : ""})`);
  }

  /** GET of raw bytes (following redirects), with the same retries. */
  async bytes(path: string): Promise<Uint8Array> {
    const where = this.endpoint("GET", path);
    let last = "";
    for (let attempt = 0; attempt <= this.o.retries; attempt++) {
      if (attempt > 0) await sleep(Math.min(30_000, this.o.backoffMs * 2 ** (attempt - 1)));
      try {
        const res = await fetch(`${this.o.base}${path}`, { signal: AbortSignal.timeout(this.o.timeoutMs) });
        const buf = new Uint8Array(await res.arrayBuffer());
        if (res.ok) return buf;
        last = `HTTP ${res.status}: ${clip(new TextDecoder().decode(buf.subarray(0, 400)))}`;
        if (res.status < 500 && res.status !== 429) break;
      } catch (e) {
        last = describeFetchError(e, this.o.timeoutMs);
      }
    }
    throw new EngineError(this.o.engine, where, last);
  }
}

function describeFetchError(e: unknown, timeoutMs: number): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err.name === "TimeoutError" || err.name === "AbortError") return `no answer within ${timeoutMs / 1000} s`;
  const cause = err.cause?.code ?? err.cause?.message;
  return `connection failed (${cause ?? err.message})`;
}

/** A JSON object (not an array, not null). */
export const isObj = (x: unknown): x is Record<string, unknown> =>
  typeof x === "object" && x !== null && !Array.isArray(x);

/**
 * The server's own words from an error body: FastAPI's `detail`, vLLM's `message`, or an `error` (a string or
 * `{message}`); else the body itself, clipped.
 */
export function detail(text: string): string {
  try {
    const j = JSON.parse(text) as { detail?: unknown; message?: unknown; error?: unknown };
    const d = j.detail ?? j.message ?? j.error;
    if (d !== undefined) return typeof d === "string" ? d : JSON.stringify(d).slice(0, 300);
  } catch {}
  return text.slice(0, 300) || "(empty body)";
}
