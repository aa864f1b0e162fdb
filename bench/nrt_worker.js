// nrt's benchmark worker (see _workers.js): `node nrt_worker.js --threads T serve` answers JSON commands a line
//   {"op": "info", "config"}                  -> {"threads", "params"}
//   {"op": "sgemm", "n", "reps"}             -> {"values": [GFLOP/s per call]}
//   {"op": "train", "reps", "config"}        -> {"values": [ms per step]}
//   {"op": "sample", "reps", "config"}       -> {"values": [tokens/s per run]}
// and `node nrt_worker.js --threads T rss JSON` trains JSON.steps steps and prints {"maxrss_mb"}.
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
  const answer = (cmd) => {
    bench ??= cmd.config ? new NrtBench(cmd.config) : undefined;
    switch (cmd.op) {
      case "info":
        return { threads: native().getThreads(), params: new Model(modelConfig(cmd.config)).numParams };
      case "sgemm":
        return { values: Array.from(native().benchSgemm(cmd.n, cmd.reps)) };
      case "train":
        return { values: bench.train(cmd.reps) };
      case "sample":
        return { values: bench.sample(cmd.reps) };
      default:
        return { error: `unknown op ${cmd.op}` };
    }
  };
  serveLines(answer);
}
