/**
 * The model behind nrt's stand-in vLLM and SGLang servers (test/stand-ins/vllm-server.ts, sglang-server.ts): a model
 * directory loaded into the native engine, reloaded from disk on request, sampling streams with given seeds and
 * scoring sequences. For tests and the loopback benchmark only.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { loadModelDir } from "../../src/io/model-dir.js";
import type { Model } from "../../src/model/model.js";

export interface Stream {
  /** generated ids, the stop id included when the stream stopped on one */
  tokens: number[];
  logprobs: number[];
  stopped: boolean;
}

export interface StreamParams {
  maxNew: number;
  temperature: number;
  /** 0 or −1: off */
  topK: number;
  topP: number;
  stop: number[];
}

export class ServedModel {
  model!: Model;
  /** loads from disk so far (the first included) */
  loads = 0;

  constructor(public dir: string) {
    this.load(dir);
  }

  load(dir: string): void {
    this.model = loadModelDir(dir).model;
    this.dir = dir;
    this.loads++;
  }

  /** Streams prompts[b] with seeds[b] (native stream seeds), all in one batch. */
  generate(prompts: readonly (readonly number[])[], seeds: readonly number[], p: StreamParams): Stream[] {
    if (p.maxNew === 0) return prompts.map(() => ({ tokens: [], logprobs: [], stopped: false }));
    const r = this.model.runner.generate(
      Int32Array.from(prompts.flat()),
      Int32Array.from(prompts.map((x) => x.length)),
      {
        maxNew: p.maxNew,
        temperature: p.temperature,
        topK: Math.max(p.topK, 0),
        topP: p.topP,
        seed: 0,
        seeds: [...seeds],
        stop: p.stop,
      },
    );
    return prompts.map((_, b) => {
      const n = r.lengths[b];
      const at = b * p.maxNew;
      return {
        tokens: Array.from(r.tokens.subarray(at, at + n)),
        logprobs: Array.from(r.logprobs.subarray(at, at + n)),
        stopped: r.stopped[b] === 1,
      };
    });
  }

  /** Teacher-forced log p of each token of each sequence (0 at the first). */
  score(seqs: readonly (readonly number[])[]): Float32Array[] {
    const r = this.model.runner.forward(Int32Array.from(seqs.flat()), Int32Array.from(seqs.map((s) => s.length)));
    let at = 0;
    return seqs.map((s) => {
      const out = r.logprobs.slice(at, at + s.length);
      at += s.length;
      return out;
    });
  }
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(typeof body === "string" ? body : JSON.stringify(body));
  }
}

export type Json = Record<string, unknown>;
export type Handler = (method: string, path: string, body: unknown) => unknown | Promise<unknown>;

export interface StubServer {
  url: string;
  server: Server;
  /** requests received, by path */
  hits: Map<string, number>;
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1 answering JSON: `handle` returns the body (undefined: empty) or throws HttpError. */
export async function serveJson(handle: Handler): Promise<StubServer> {
  const hits = new Map<string, number>();
  const onRequest = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const send = (status: number, text: string) => {
      res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
      res.end(text);
    };
    try {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const raw = Buffer.concat(chunks).toString("utf8");
      let body: unknown = null;
      if (raw.trim()) {
        try {
          body = JSON.parse(raw);
        } catch {
          throw new HttpError(400, { detail: "body is not JSON" });
        }
      }
      const out = await handle(req.method ?? "GET", path, body);
      send(200, out === undefined ? "" : JSON.stringify(out));
    } catch (e) {
      if (e instanceof HttpError) send(e.status, typeof e.body === "string" ? e.body : JSON.stringify(e.body));
      else send(500, JSON.stringify({ detail: (e as Error).message }));
    }
  };
  const server = createServer((req, res) => {
    void onRequest(req, res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    hits,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
