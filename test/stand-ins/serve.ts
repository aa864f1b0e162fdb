/**
 * Starts one stand-in server in this process and prints its URL as the first line of stdout; for the loopback
 * benchmark (bench/engine-http.js), which runs it with vite-node (TypeScript compiled on the fly, no build step):
 *   vite-node test/stand-ins/serve.ts -- '{"kind":"tinker","threads":1,"model":{…ModelConfig},"seed":7,"std":0.05,"baseModel":"nrt-bench"}'
 *   vite-node test/stand-ins/serve.ts -- '{"kind":"vllm","threads":1,"dir":"…","name":"nrt-bench","devMode":true}'
 * The server runs until the process is killed.
 */
import type { ModelConfig } from "../../src/model/config.js";
import { Model } from "../../src/model/model.js";
import { setThreads } from "../../src/model/native.js";
import { startTinkerServer } from "./tinker-server.js";
import { startVllmStub } from "./vllm-server.js";

type Args =
  | { kind: "tinker"; threads: number; model: ModelConfig; seed: number; std: number; baseModel: string }
  | { kind: "vllm"; threads: number; dir: string; name: string; devMode: boolean };

const a = JSON.parse(process.argv[process.argv.length - 1]) as Args;
setThreads(a.threads);
const server =
  a.kind === "tinker"
    ? await startTinkerServer({ model: Model.init(a.model, a.seed, a.std), baseModel: a.baseModel })
    : await startVllmStub({ dir: a.dir, name: a.name, devMode: a.devMode });
process.stdout.write(`${server.url}\n`);
