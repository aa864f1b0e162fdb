// nrt's benchmark worker (see _workers.js): `node nrt_worker.js --threads T serve` answers JSON commands a line
//   {"op": "info", "config"}                  -> {"threads", "params"}
//   {"op": "sgemm", "n", "reps"}             -> {"values": [GFLOP/s per call]}
//   {"op": "train", "reps", "config"}        -> {"values": [ms per step]}
//   {"op": "sample", "reps", "config", "modelDir"?, "maxNew"?} -> {"values": [tokens/s per run]}
//   {"op": "reset"}                          -> {} (drops the models, so that a larger one fits)
// A worker keeps the models of the config it last saw (a new config replaces them).
// and `node nrt_worker.js --threads T rss JSON` trains JSON.steps steps and prints {"maxrss_mb"}.
import { LORA_TARGETS, LoraAdapter } from "../dist/model/lora.js";
import { Model } from "../dist/model/model.js";
import { native } from "../dist/model/native.js";
import { modelConfig, NrtBench, NrtTrainer } from "./_nrt.js";
import { serveLines } from "./_workers.js";

const argv = process.argv.slice(2);
const threads = Number(argv[argv.indexOf("--threads") + 1]);
native().setThreads(threads);
const mode = argv.find((a) => a === "serve" || a === "rss");

if (mode === "rss") {
  const { config, steps } = JSON.parse(argv[argv.indexOf("rss") + 1]);
  const trainer = new NrtTrainer(config);
  for (let s = 0; s < steps; s++) trainer.step();
  // process.resourceUsage().maxRSS is in KiB, like ru_maxrss
  process.stdout.write(`${JSON.stringify({ maxrss_mb: process.resourceUsage().maxRSS / 1024 })}\n`);
} else {
  let bench;
  let benchConfig;
  const drop = () => {
    bench = undefined;
    benchConfig = undefined;
    globalThis.gc?.(); // run with --expose-gc: the old model's buffers go before the new one's are allocated
  };
  const answer = (cmd) => {
    if (cmd.config && cmd.op !== "info" && JSON.stringify(cmd.config) !== benchConfig) {
      drop();
      bench = new NrtBench(cmd.config);
      benchConfig = JSON.stringify(cmd.config);
    }
    switch (cmd.op) {
      case "info": {
        const m = new Model(modelConfig(cmd.config));
        const lora = cmd.config.lora && new LoraAdapter(m.config, { ...cmd.config.lora, targets: LORA_TARGETS });
        return { threads: native().getThreads(), params: m.numParams, ...(lora && { trained: lora.params.length }) };
      }
      case "sgemm":
        return { values: Array.from(native().benchSgemm(cmd.n, cmd.reps)) };
      case "train":
        return { values: bench.train(cmd.reps) };
      case "sample":
        return { values: bench.sample(cmd.reps, cmd) };
      case "reset":
        drop();
        return {};
      default:
        return { error: `unknown op ${cmd.op}` };
    }
  };
  serveLines(answer);
}
