// llama.cpp peer for run.js's sample_135m_llamacpp line (see _workers.js): llama.cpp through node-llama-cpp (its
// prebuilt CPU binary, gpu: false), on the GGUF that `nrt export --format gguf --dtype f32` wrote from the model
// directory nrt samples from, so both sides run the same f32 weights.
//   node peer_llamacpp.js --threads T serve   answers JSON commands a line:
//     {"op": "info"}                                      -> {"threads", "llama"}
//     {"op": "sample", "reps", "config", "gguf", "maxNew"?} -> {"values": [tokens/s per run]}
//     {"op": "reset"}                                     -> {} (unloads the model)
//
// Batched decoding: one context with `sequences: streams` and one sequence (context.getSequence()) per stream; the
// streams' evaluate() generators run concurrently, and node-llama-cpp puts the tokens that its sequences queue
// together into one llama_decode batch (once every sequence has queued, at once; otherwise on the next event-loop
// cycle). Sampling as nrt's: temperature 1 over the whole vocabulary (topK 0, topP 1, minP 0), a seed per stream,
// no stop token (every stream generates maxNew tokens). Threads: getLlama's maxThreads and the context's threads
// are both T. The KV cache stays at node-llama-cpp's default type (F16).
import { getLlama } from "node-llama-cpp";
import { serveLines } from "./_workers.js";

const argv = process.argv.slice(2);
const threads = Number(argv[argv.indexOf("--threads") + 1]);

let llama;
let loaded; // {gguf, streams, ctxSize, model, context, sequences}

async function load(gguf, c) {
  const ctxSize = c.promptLen + c.maxNew;
  if (loaded?.gguf === gguf && loaded.streams === c.streams && loaded.ctxSize === ctxSize) return loaded;
  await unload();
  llama ??= await getLlama({ gpu: false, maxThreads: threads, logLevel: "error" });
  const model = await llama.loadModel({ modelPath: gguf, gpuLayers: 0 });
  const context = await model.createContext({
    sequences: c.streams,
    contextSize: ctxSize,
    threads,
    batchSize: Math.max(512, c.streams * c.promptLen),
  });
  const sequences = Array.from({ length: c.streams }, () => context.getSequence());
  loaded = { gguf, streams: c.streams, ctxSize, model, context, sequences };
  return loaded;
}

async function unload() {
  if (!loaded) return;
  await loaded.context.dispose();
  await loaded.model.dispose();
  loaded = undefined;
}

/** tokens/s of one run: every stream's prompt, then maxNew sampled tokens each, all streams at once */
async function sampleOnce({ sequences }, c, maxNew, seed) {
  const t0 = performance.now();
  await Promise.all(
    sequences.map(async (seq, b) => {
      await seq.clearHistory();
      const prompt = Array.from({ length: c.promptLen }, (_, i) => (b * 31 + i * 7) % c.vocabSize);
      const opts = {
        temperature: c.temperature,
        topK: 0,
        topP: 1,
        minP: 0,
        seed: seed * 1000 + b,
        yieldEogToken: true,
      };
      let n = 0;
      for await (const _ of seq.evaluate(prompt, opts)) if (++n >= maxNew) break;
      if (n < maxNew) throw new Error(`stream ${b} ended after ${n} tokens`);
    }),
  );
  return (sequences.length * maxNew) / ((performance.now() - t0) / 1e3);
}

async function answer(cmd) {
  switch (cmd.op) {
    case "info":
      llama ??= await getLlama({ gpu: false, maxThreads: threads, logLevel: "error" });
      return { threads, llama: llama.buildType, gpu: llama.gpu };
    case "sample": {
      const c = cmd.config;
      const l = await load(cmd.gguf, c);
      const values = [];
      for (let r = 0; r < cmd.reps; r++) values.push(await sampleOnce(l, c, cmd.maxNew ?? c.maxNew, r));
      return { values };
    }
    case "reset":
      await unload();
      return {};
    default:
      return { error: `unknown op ${cmd.op}` };
  }
}

if (argv.includes("serve")) serveLines(answer);
