// The PyTorch side of the benchmark: long-lived `peer_torch.py serve` workers, one per thread setting, so that
// run.js can interleave their repetitions with nrt's in the same run.
import { spawn, spawnSync } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const PYTHON = "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("./peer_torch.py", import.meta.url));

/** Thread settings tried for PyTorch; the fastest one is reported as the peer (SPEC §8). */
export const PEER_SETTINGS = [
  { threads: 1, blas: 2 },
  { threads: 2, blas: 2 },
  { threads: 1, blas: 1 },
];

function peerEnv(s) {
  return { ...process.env, OPENBLAS_NUM_THREADS: String(s.blas), OMP_NUM_THREADS: String(s.threads) };
}

export function peerLabel(s) {
  return `torch.set_num_threads(${s.threads}), OPENBLAS_NUM_THREADS=${s.blas}`;
}

/** One `peer_torch.py serve` process; ask() sends a command and resolves with its one-line JSON answer. */
export class TorchWorker {
  constructor(setting) {
    this.setting = setting;
    this.label = peerLabel(setting);
    this.waiting = [];
    this.proc = spawn(PYTHON, [SCRIPT, "serve", "--threads", String(setting.threads)], {
      env: peerEnv(setting),
      stdio: ["pipe", "pipe", "inherit"],
    });
    createInterface({ input: this.proc.stdout }).on("line", (line) => {
      const w = this.waiting.shift();
      const ans = JSON.parse(line);
      if (ans.error) w?.reject(new Error(`peer_torch.py: ${ans.error}`));
      else w?.resolve(ans);
    });
    this.proc.on("exit", (code) => {
      for (const w of this.waiting.splice(0)) w.reject(new Error(`peer_torch.py exited with code ${code}`));
    });
    this.proc.on("error", (e) => {
      for (const w of this.waiting.splice(0)) w.reject(e);
    });
  }

  ask(cmd) {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.proc.stdin.write(`${JSON.stringify(cmd)}\n`);
    });
  }

  close() {
    this.proc.stdin.end();
  }
}

/** Peak RSS (MB) of a separate `peer_torch.py rss` process training `steps` steps of `config`. */
export function peerTrainRss(setting, config, steps) {
  const r = spawnSync(
    PYTHON,
    [SCRIPT, "rss", JSON.stringify({ config, steps }), "--threads", String(setting.threads)],
    {
      env: peerEnv(setting),
      encoding: "utf8",
    },
  );
  if (r.status !== 0) throw new Error(`peer_torch.py rss failed: ${r.stderr}`);
  return JSON.parse(r.stdout).maxrss_mb;
}
