// A proxy on 127.0.0.1 in front of an engine server that misbehaves on cue: answers 500, never answers, drops the
// connection (before or after the server saw the request), or answers 200 with a body that is not JSON; everything
// else passes through unchanged.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** `lost`: the request reaches the server, but the connection drops before its answer gets back. */
export type Fault = "pass" | "500" | "hang" | "drop" | "malformed" | "lost";

/** Decides the fate of the n-th request (1-based) to `path`. */
export type FaultRule = (path: string, n: number) => Fault;

export interface FaultProxy {
  url: string;
  /** replace the rule (e.g. heal the server) */
  rule: FaultRule;
  /** requests seen, by path */
  seen: Map<string, number>;
  /** faults injected, by kind */
  injected: Map<Fault, number>;
  close(): Promise<void>;
}

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export async function startFaultProxy(upstream: string, rule: FaultRule = () => "pass"): Promise<FaultProxy> {
  const p: FaultProxy = { url: "", rule, seen: new Map(), injected: new Map(), close: async () => {} };
  const hung: IncomingMessage[] = [];
  const server: Server = createServer(async (req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const n = (p.seen.get(path) ?? 0) + 1;
    p.seen.set(path, n);
    const data = await body(req);
    const fault = p.rule(path, n);
    if (fault !== "pass") p.injected.set(fault, (p.injected.get(fault) ?? 0) + 1);
    switch (fault) {
      case "500":
        res.writeHead(500, { "content-type": "application/json" }).end('{"detail":"Internal Server Error"}');
        return;
      case "hang":
        hung.push(req);
        return;
      case "drop":
        req.socket.destroy();
        return;
      case "malformed":
        res.writeHead(200, { "content-type": "application/json" }).end('{"request_id": "7", "status": pend');
        return;
    }
    const up = await fetch(`${upstream}${req.url}`, {
      method: req.method,
      headers: { "content-type": req.headers["content-type"] ?? "application/json" },
      body: req.method === "GET" ? undefined : data,
      redirect: "manual",
    });
    const out = Buffer.from(await up.arrayBuffer());
    if (fault === "lost") {
      req.socket.destroy();
      return;
    }
    const headers: Record<string, string> = { "content-type": up.headers.get("content-type") ?? "application/json" };
    const loc = up.headers.get("location");
    if (loc) headers.location = loc;
    res.writeHead(up.status, headers).end(out);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  p.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  p.close = () =>
    new Promise<void>((r) => {
      for (const h of hung) h.socket.destroy();
      server.closeAllConnections();
      server.close(() => r());
    });
  return p;
}
