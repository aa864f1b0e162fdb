// Benchmark workers: one long-lived process per (side, thread setting), each answering one JSON command a line
// (bench/nrt_worker.js for nrt, bench/peer_torch.py for PyTorch, bench/peer_llamacpp.js for llama.cpp; the same
// ops: info, sgemm, train, sample, reset, as far as each side has them), so that run.js can interleave their
// repetitions. Environment variables are per process, hence one process each.
import { spawn, spawnSync } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const PYTHON = "/usr/bin/python3";
const here = (f) => fileURLToPath(new URL(f, import.meta.url));

// OMP_WAIT_POLICY=passive makes OpenMP threads sleep at once at a barrier instead of spinning (libgomp spins up
// to 300,000 times by default). On a machine where another process holds a core, spinning starves the thread that
// shares that core and makes 2-thread runs several times slower; on an idle machine spinning is slightly faster.
// Both sides are tried both ways where it matters (PyTorch uses libgomp for its intra-op threads).
/** Thread settings tried for each side; each side is reported at its fastest (SPEC §8). */
export const SETTINGS = {
  nrt: [{ threads: 1 }, { threads: 2 }, { threads: 2, passive: true }],
  peer: [
    { threads: 1, blas: 2 },
    { threads: 2, blas: 2 },
    { threads: 2, blas: 2, passive: true },
    { threads: 1, blas: 1 },
  ],
  // llama.cpp (node-llama-cpp, CPU): its own thread pool, the thread count set explicitly
  llamacpp: [{ threads: 1 }, { threads: 2 }],
  // nrt again, as the peer of a line that compares two nrt workloads (train_step_135m_lora_vs_full)
  nrtfull: [{ threads: 1 }, { threads: 2 }, { threads: 2, passive: true }],
};

export function label(side, s) {
  const wait = s.passive ? ", OMP_WAIT_POLICY=passive" : "";
  if (side === "nrt") return `nrt setThreads(${s.threads})${wait}`;
  if (side === "nrtfull") return `nrt full fine-tuning, setThreads(${s.threads})${wait}`;
  if (side === "llamacpp") return `llama.cpp threads ${s.threads}`;
  return `torch.set_num_threads(${s.threads}), OPENBLAS_NUM_THREADS=${s.blas}${wait}`;
}

function command(side, s) {
  const env = { ...process.env, OMP_NUM_THREADS: String(s.threads) };
  if (s.passive) env.OMP_WAIT_POLICY = "passive";
  else delete env.OMP_WAIT_POLICY;
  if (side === "nrt" || side === "nrtfull")
    return { cmd: process.execPath, args: ["--expose-gc", here("./nrt_worker.js"), "--threads", `${s.threads}`], env };
  if (side === "llamacpp")
    return { cmd: process.execPath, args: [here("./peer_llamacpp.js"), "--threads", `${s.threads}`], env };
  env.OPENBLAS_NUM_THREADS = String(s.blas);
  return { cmd: PYTHON, args: [here("./peer_torch.py"), "--threads", `${s.threads}`], env };
}

/**
 * A worker's side of the line protocol: one JSON command a line on stdin, one JSON answer a line on stdout.
 * `answer` may return a promise; commands are answered one at a time, in order.
 */
export function serveLines(answer) {
  let done = Promise.resolve();
  const lines = createInterface({ input: process.stdin });
  // stdin closed (run.js's close()): exit once the commands before are answered, whatever handles a library holds
  lines.on("close", () => done.then(() => process.exit(0)));
  lines.on("line", (line) => {
    done = done.then(async () => {
      let ans;
      try {
        ans = await answer(JSON.parse(line));
      } catch (e) {
        ans = { error: String(e?.stack ?? e) };
      }
      process.stdout.write(`${JSON.stringify(ans)}\n`);
    });
  });
}

/** One worker process; ask() sends a command and resolves with its one-line JSON answer. */
export class Worker {
  /** `spec` (a whole command line and environment) replaces the default `command(side, setting)` + "serve". */
  constructor(side, setting, spec) {
    this.side = side;
    this.setting = setting;
    this.label = label(side, setting);
    this.waiting = [];
    const dflt = spec ? null : command(side, setting);
    const { cmd, args, env } = spec ?? { ...dflt, args: [...dflt.args, "serve"] };
    this.proc = spawn(cmd, args, { env, stdio: ["pipe", "pipe", "inherit"] });
    createInterface({ input: this.proc.stdout }).on("line", (line) => {
      const w = this.waiting.shift();
      const ans = JSON.parse(line);
      if (ans.error) w?.reject(new Error(`${this.label}: ${ans.error}`));
      else w?.resolve(ans);
    });
    const fail = (e) => {
      for (const w of this.waiting.splice(0)) w.reject(e);
    };
    this.proc.on("exit", (code) => fail(new Error(`${this.label}: worker exited with code ${code}`)));
    this.proc.on("error", fail);
  }

  /** With `timeoutS`, a command that takes longer kills the worker (it is `dead` from then on) and rejects. */
  ask(cmd, timeoutS) {
    return new Promise((resolve, reject) => {
      let timer;
      const done = (f) => (x) => {
        clearTimeout(timer);
        f(x);
      };
      this.waiting.push({ resolve: done(resolve), reject: done(reject) });
      this.proc.stdin.write(`${JSON.stringify(cmd)}\n`);
      if (timeoutS)
        timer = setTimeout(() => {
          this.kill();
          reject(new Error(`${this.label}: no answer within ${timeoutS} s`));
        }, timeoutS * 1e3);
    });
  }

  close() {
    if (!this.dead) this.proc.stdin.end();
  }

  /**
   * Closes the worker and resolves once its process has exited (its memory is back), killing it if it has not
   * within 10 s; it is `dead` from then on.
   */
  stop() {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
      this.dead = true;
      return Promise.resolve();
    }
    const exited = new Promise((ok) => this.proc.once("exit", ok));
    this.close();
    this.dead = true;
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 10_000);
    return exited.then(() => clearTimeout(timer));
  }

  /** Ends the worker's process now (its pending commands are rejected). */
  kill() {
    this.dead = true;
    this.proc.kill("SIGKILL");
  }
}

/** Peak RSS (MB, getrusage ru_maxrss) of a fresh process of `side` training `steps` steps of `config`. */
export function trainPeakRss(side, setting, config, steps) {
  const { cmd, args, env } = command(side, setting);
  const r = spawnSync(cmd, [...args, "rss", JSON.stringify({ config, steps })], { env, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${label(side, setting)}: rss run failed: ${r.stderr}`);
  return JSON.parse(r.stdout).maxrss_mb;
}
