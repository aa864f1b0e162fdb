// Child process of `npm run bench` (train_peak_rss): trains the reference model for `steps` steps and prints
// {"maxrss_mb"}, the process's peak resident memory (getrusage ru_maxrss, as peer_torch.py rss reports it).
import { native } from "../dist/model/native.js";
import { NrtTrainer } from "./_nrt.js";

const { ref, steps, threads } = JSON.parse(process.argv[2]);
native().setThreads(threads);
const trainer = new NrtTrainer(ref);
for (let s = 0; s < steps; s++) trainer.step();
// process.resourceUsage().maxRSS is in KiB
process.stdout.write(`${JSON.stringify({ maxrss_mb: process.resourceUsage().maxRSS / 1024 })}\n`);
