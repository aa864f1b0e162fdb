// `npm run bench [-- --json] [--rounds N] [--only a,b] [--threads N] [--lora-rank R] [--check]`: nrt against PyTorch on this machine (SPEC §8,
// issue 5). --check: exit code 1 when a ratio misses its target (otherwise only errors fail the run).
//
// Both sides run in the same run, interleaved: each round runs a chunk of repetitions of every thread setting of
// nrt and of PyTorch, alternating sides (and reversing the order every other round), after one warm-up chunk each.
// A setting's value is the median of all its repetitions; each side is reported at its fastest setting.
// The *_135m lines do the same at the SmolLM2-135M shape (M135 below, random weights); sample_135m and
// sample_135m_llamacpp are one interleaved measurement of three sides (nrt, PyTorch, llama.cpp through
// node-llama-cpp on the GGUF that nrt's exporter wrote from the weights nrt samples), reported as two lines.
// Then the lines that compare nrt with itself (SPEC §8), from their own scripts: soak.js (soak_rss_growth, issue 9)
// and engine-http.js (engine_http_overhead, issue 10); and nrt-step.js (nrt_step, issue 6: one full NRT step against
// a PyTorch one, bench/peer_nrt_step.py, with its phase split on stderr); the long lines of issue 18, nrt-step.js
// --shape 135m (nrt_step_135m and its phases, minutes) and nrt-step-1b.js (train_rss_1b_lora, ~10 min quiet); --only
// selects among all names.
// The table (and progress) goes to stderr; with --json, stdout gets one line per benchmark:
//   {"name", "nrt", "peer", "unit", "ratio"} with ratio = nrt / peer.
// Needs dist/ (npx tsc -p tsconfig.json), the addon (native/build) and /usr/bin/python3 with torch.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SETTINGS, trainPeakRss, Worker } from "./_workers.js";

/** The reference model of issue 5 and the workloads' sizes. */
const REF = {
  vocabSize: 512,
  hiddenSize: 128,
  numLayers: 4,
  numHeads: 4,
  intermediateSize: 384,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  batch: 16,
  seqLen: 64,
  streams: 64,
  promptLen: 8,
  maxNew: 128,
  temperature: 1.0,
};
const RSS_STEPS = 20;

/**
 * The SmolLM2-135M shape (HuggingFaceTB/SmolLM2-135M's config.json), random weights (std 0.02): 134,515,008
 * parameters, ~540 MB in f32. Training on 2 × 256 tokens; sampling 16 streams of 8-token prompts, 128 new tokens.
 */
const M135 = {
  vocabSize: 49152,
  hiddenSize: 576,
  numLayers: 30,
  numHeads: 9,
  numKvHeads: 3,
  intermediateSize: 1536,
  tied: true,
  rmsNormEps: 1e-5,
  ropeTheta: 100000,
  maxPositionEmbeddings: 8192,
  batch: 2,
  seqLen: 256,
  streams: 16,
  promptLen: 8,
  maxNew: 128,
  temperature: 1.0,
};
// Resident memory of one 135M training worker (measured: nrt 2.9 GB, PyTorch 4.0 GB), so that train_step_135m
// runs one worker per side and thread count (2 + 2), and waits for that much free memory first.
const TRAIN_135M_GB = { nrt: 2.9, peer: 4.0 };
/**
 * The LoRA step: rank R (--lora-rank, default 16), alpha 2R on the seven projections (q, k, v, o, gate, up, down),
 * the base frozen.
 */
const LORA_RANK = Number(
  process.argv.includes("--lora-rank") ? process.argv[process.argv.indexOf("--lora-rank") + 1] : 16,
);
const M135_LORA = { ...M135, lora: { rank: LORA_RANK, alpha: 2 * LORA_RANK } };

const argv = process.argv.slice(2);
const json = argv.includes("--json");
const opt = (flag, def) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : def);
const rounds = Number(opt("--rounds", "5"));
// --threads N: only the thread settings with N threads (a loaded or memory-short machine); default every setting
const onlyThreads = Number(opt("--threads", "0"));
const check = argv.includes("--check");
const only = opt("--only", "")
  .split(",")
  .filter((s) => s);
const log = (s) => process.stderr.write(`${s}\n`);

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// The workers of each side, one per thread setting (_workers.js), started when a benchmark first needs them.
const pool = {};
const workersOf = (side) => {
  pool[side] = (pool[side] ?? SETTINGS[side].map(() => null)).map((w, i) =>
    !w || w.dead ? new Worker(side, SETTINGS[side][i]) : w,
  );
  return pool[side];
};
const allWorkers = () => Object.values(pool).flat();
const values = async (w, cmd, timeoutS) => (await w.ask(cmd, timeoutS)).values;

// A benchmark: one interleaved measurement giving one SPEC §8 line per peer side in `lines` ({name, side, target};
// side "peer" is PyTorch, "llamacpp" llama.cpp); unit, whether higher is better, and run(w, files), one chunk of
// repetitions on worker w (files: what setup() prepared). Optional: rounds (default --rounds), warm(w, files) (the
// warm-up chunk; default run; null: no warm-up), prune (default PRUNE), settings(w) (which workers take part; default
// all), setup() (once, before the first chunk), memoryGB (free memory to wait for first). A chunk asked with a
// timeout (values(w, cmd, seconds)) that takes longer drops its setting, and its worker is killed.
const line = (name, target, side = "peer") => ({ name, side, target });
const BENCHES = [1024, 2048]
  .map((n) => ({
    lines: [line(`sgemm_${n}`, ">= 0.95")],
    unit: "GFLOP/s",
    higher: true,
    run: (w) => values(w, { op: "sgemm", n, reps: n > 1024 ? 2 : 5 }),
  }))
  .concat([
    {
      lines: [line("train_step", "<= 1.0")],
      unit: "ms",
      higher: false,
      run: (w) => values(w, { op: "train", reps: 3, config: REF }),
    },
    {
      lines: [line("sample_batched", ">= 2")],
      unit: "tokens/s",
      higher: true,
      run: (w) => values(w, { op: "sample", reps: 1, config: REF }),
    },
    {
      lines: [line("train_peak_rss", "<= 1.2")],
      unit: "MB",
      higher: false,
      rounds: 1,
      warm: null,
      run: async (w) => [trainPeakRss(w.side, w.setting, REF, RSS_STEPS)],
    },
    {
      // one step a chunk (~1-5 s); one worker per side and thread count: 1 thread, and 2 with passive waiting
      // (the better 2-thread setting on a shared machine), as four 135M trainers already take ~14 GB
      lines: [line("train_step_135m", "<= 1.0")],
      unit: "ms",
      higher: false,
      settings: (w) =>
        w.side === "nrt"
          ? w.setting.threads === 1 || w.setting.passive
          : w.setting.blas === w.setting.threads && (w.setting.threads === 1 || w.setting.passive),
      memoryGB: 2 * (TRAIN_135M_GB.nrt + TRAIN_135M_GB.peer) + 1,
      run: (w) => values(w, { op: "train", reps: 1, config: M135 }),
    },
    {
      // nrt's LoRA step against PyTorch's (LoRA written by hand: two matmuls per target, the base frozen), and
      // against nrt's own full step, all three interleaved in the same rounds; settings as for train_step_135m
      lines: [line("train_step_135m_lora", "<= 1.0"), line("train_step_135m_lora_vs_full", "<= 0.75", "nrtfull")],
      unit: "ms",
      higher: false,
      settings: (w) =>
        w.side === "peer"
          ? w.setting.blas === w.setting.threads && (w.setting.threads === 1 || w.setting.passive)
          : w.setting.threads === 1 || w.setting.passive,
      memoryGB: 2 * (1.5 * TRAIN_135M_GB.nrt + TRAIN_135M_GB.peer) + 1, // a LoRA worker holds about half a full one
      run: (w) => values(w, { op: "train", reps: 1, config: w.side === "nrtfull" ? M135 : M135_LORA }),
    },
    {
      // one run (16 × 128 tokens, 10-90 s) a chunk: 3 rounds after a short warm-up (16 tokens), and settings more
      // than 15 % slower than their side's best dropped after the first round
      lines: [line("sample_135m", ">= 2"), line("sample_135m_llamacpp", ">= 3", "llamacpp")],
      unit: "tokens/s",
      higher: true,
      rounds: Math.min(rounds, 3),
      prune: 1.15,
      // a run over 5 minutes (an oversubscribed llama.cpp threadpool on a loaded machine: ~10x slower) is dropped
      setup: () => gguf135m(),
      warm: (w, f) => values(w, { op: "sample", reps: 1, config: M135, maxNew: 16, ...f }, 300),
      run: (w, f) => values(w, { op: "sample", reps: 1, config: M135, ...f }, 300),
    },
  ]);

// After the first round, a setting more than PRUNE times slower than the best of its side stops being run (under
// load, oversubscribed thread settings can be 10x slower and would dominate the run time); its median so far is
// still listed.
const PRUNE = 2;

/** Interleaved rounds of b over nrt's workers and those of `sides`; the best entry of each side. */
async function measure(b, sides, files) {
  const name = b.lines.map((l) => l.name).join(", ");
  // a chunk that fails because its worker timed out (timeoutS) drops the entry; other failures end the run
  const guarded = (w, f) => async () => {
    try {
      return await f(w, files);
    } catch (e) {
      if (!w.dead) throw e;
      log(`  ${name}: dropped ${w.label} (${e.message})`);
      return null;
    }
  };
  const entries = (side) =>
    workersOf(side)
      .filter((w) => (!b.settings || b.settings(w)) && (!onlyThreads || w.setting.threads === onlyThreads))
      .map((w) => ({
        side,
        label: w.label,
        run: guarded(w, b.run),
        warm: guarded(w, b.warm ?? b.run),
        values: [],
      }));
  const lists = ["nrt", ...sides].map(entries);
  let order = [];
  for (let i = 0; i < Math.max(...lists.map((l) => l.length)); i++)
    order.push(...lists.map((l) => l[i]).filter(Boolean));
  const all = [...order];
  const better = (x, y) => (b.higher ? x.median > y.median : x.median < y.median);
  const best = (list) => list.reduce((a, e) => (better(e, a) ? e : a));
  const n = b.rounds ?? rounds;
  const prune = b.prune ?? PRUNE;
  // drops the entries more than `factor` times slower than their side's best (by their medians)
  const dropSlow = (factor, when) => {
    const keep = (e) => {
      const top = best(order.filter((x) => x.side === e.side));
      return (b.higher ? top.median / e.median : e.median / top.median) <= factor;
    };
    for (const e of order.filter((x) => !keep(x)))
      log(`  ${name}: dropped ${e.label} (over ${factor}x slower ${when})`);
    order = order.filter(keep);
  };
  const alive = () => {
    order = order.filter((e) => !e.dropped);
  };
  if (b.warm === undefined) for (const e of order) e.dropped = (await e.warm()) === null;
  if (b.warm) {
    // a warm-up of its own (shorter than a chunk): its figures only drop the hopeless settings (an oversubscribed
    // one can be 10x slower, and one chunk of it takes minutes); they are not kept
    for (const e of order) {
      const v = await e.warm();
      e.dropped = v === null;
      e.median = v === null ? Number.NaN : median(v);
    }
    alive();
    dropSlow(PRUNE, "in the warm-up");
  }
  alive();
  for (let r = 0; r < n; r++) {
    for (const e of r % 2 ? [...order].reverse() : order) {
      const v = await e.run();
      if (v === null) e.dropped = true;
      else e.values.push(...v);
    }
    alive();
    for (const e of order) e.median = median(e.values);
    if (r === 0 && n > 1) dropSlow(prune, "in round 1");
    log(`  ${name}: round ${r + 1}/${n}`);
  }
  // the best of the entries that finished a chunk and were not dropped by a timeout (null: none)
  for (const e of all) e.median = e.values.length ? median(e.values) : e.median;
  const measured = (list) => list.filter((e) => e.values.length && !e.dropped);
  const bestOf = (list) => (measured(list).length ? best(measured(list)) : null);
  return { all, best: Object.fromEntries(["nrt", ...sides].map((side, i) => [side, bestOf(lists[i])])) };
}

// ---- files for the llama.cpp line: a model directory (bench/write-model.js, nrt's writer) of the weights nrt
// samples, and its f32 GGUF from `nrt export --format gguf`; in a temporary directory removed at the end
let scratch;
let ggufFiles;
function gguf135m() {
  if (ggufFiles) return ggufFiles;
  scratch ??= mkdtempSync(join(tmpdir(), "nrt-bench-"));
  const modelDir = join(scratch, "smollm2-135m-shape");
  const gguf = join(scratch, "smollm2-135m-shape-f32.gguf");
  const node = (args) => {
    const r = spawnSync(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
    if (r.status !== 0) throw new Error(`node ${args.join(" ")} failed: ${r.stderr}`);
    return r.stdout;
  };
  log(`  writing the 135M model directory and its f32 GGUF (nrt export --format gguf) in ${scratch}`);
  node([fileURLToPath(new URL("./write-model.js", import.meta.url)), JSON.stringify(M135), modelDir]);
  const nrtBin = fileURLToPath(new URL("../bin/nrt.js", import.meta.url));
  const exp = JSON.parse(
    node([nrtBin, "export", "--format", "gguf", "--dtype", "f32", modelDir, "-o", gguf, "--json"]),
  );
  log(`  ${gguf}: ${(exp.bytes / 1e6).toFixed(0)} MB, ${exp.tensors} tensors`);
  ggufFiles = { modelDir, gguf };
  return ggufFiles;
}

/** MemAvailable in GB (/proc/meminfo), or Infinity where there is none. */
function memAvailableGB() {
  try {
    const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"));
    return m ? Number(m[1]) / 1024 / 1024 : Number.POSITIVE_INFINITY;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/** Waits (up to 10 minutes) until `gb` GB are available; false if they never were. */
async function waitForMemory(gb, name) {
  for (let waited = 0; ; waited += 10) {
    const free = memAvailableGB();
    if (free >= gb) return true;
    if (waited >= 600) return false;
    if (waited % 60 === 0) log(`  ${name}: waiting for ${gb.toFixed(0)} GB of free memory (${free.toFixed(1)} GB now)`);
    await new Promise((ok) => setTimeout(ok, 10_000));
  }
}

// Self-compared lines: script, extra arguments, target, and what its two columns are.
const SELF = [
  { name: "soak_rss_growth", script: "soak.js", args: [], target: "< 1.05", cols: ["RSS at the end", "at the middle"] },
  {
    name: "engine_http_overhead",
    also: ["engine_http_overhead_split"],
    script: "engine-http.js",
    args: ["--rounds", String(rounds)],
    target: "<= 1.2",
    cols: ["step through HTTP", "in process"],
  },
  // not self-compared, but a script of its own too: nrt-step.js runs its nrt and PyTorch workers interleaved
  {
    name: "nrt_step",
    script: "nrt-step.js",
    args: ["--rounds", String(rounds)],
    target: "<= 1.0",
    cols: ["fastest nrt setting", "fastest PyTorch setting"],
  },
  // issue 18's long lines: the 135M NRT step (minutes) and the 1B-shape LoRA step's peak memory (~10 min)
  {
    name: "nrt_step_135m",
    also: ["nrt_step_135m_rollout", "nrt_step_135m_score", "nrt_step_135m_update"],
    script: "nrt-step.js",
    args: ["--shape", "135m"],
    target: "<= 1.0",
    cols: ["fastest nrt setting", "fastest PyTorch setting"],
  },
  {
    name: "train_rss_1b_lora",
    script: "nrt-step-1b.js",
    args: [],
    target: "<= 1.0",
    cols: ["peak RSS of the step", "the 12 GB budget"],
  },
];

/** Runs one self-compared script with --json and returns its SPEC §8 lines (x.name's, then x.also's that it printed). */
function runSelf(x) {
  const script = fileURLToPath(new URL(`./${x.script}`, import.meta.url));
  if (!existsSync(script)) return undefined;
  log(`  ${x.name}: node bench/${x.script} --json ${x.args.join(" ")}`);
  const r = spawnSync(process.execPath, [script, "--json", ...x.args], {
    stdio: ["ignore", "pipe", "inherit"],
    encoding: "utf8",
  });
  const lines = r.stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l));
  const want = [x.name, ...(x.also ?? [])];
  const found = want.map((n) => lines.find((l) => l.name === n)).filter(Boolean);
  if (!found.length) log(`  ${x.name}: bench/${x.script} exited with ${r.status} and printed no result`);
  return found;
}

const meets = (target, ratio) => {
  const [op, v] = target.split(" ");
  return { ">=": ratio >= +v, "<=": ratio <= +v, "<": ratio < +v }[op];
};

const fmt = (x) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2));

async function main() {
  const selected = (name) => !only.length || only.includes(name);
  const sideOf = (lines) => [...new Set(lines.filter((l) => selected(l.name)).map((l) => l.side))];
  const benches = BENCHES.filter((b) => sideOf(b.lines).length);
  const info = await workersOf("peer")[0].ask({ op: "info", config: REF });
  const { params } = await workersOf("nrt")[0].ask({ op: "info", config: REF });
  if (params !== info.params) throw new Error(`parameter counts differ: nrt ${params}, PyTorch ${info.params}`);
  let params135;
  if (benches.some((b) => b.lines.some((l) => l.name.includes("_135m") && selected(l.name)))) {
    const p = await workersOf("peer")[0].ask({ op: "info", config: M135 });
    params135 = (await workersOf("nrt")[0].ask({ op: "info", config: M135 })).params;
    if (params135 !== p.params) throw new Error(`135M parameter counts differ: nrt ${params135}, PyTorch ${p.params}`);
    const la = await workersOf("peer")[0].ask({ op: "info", config: M135_LORA });
    const ln = await workersOf("nrt")[0].ask({ op: "info", config: M135_LORA });
    if (la.params !== ln.params || la.trained !== ln.trained)
      throw new Error(
        `135M LoRA parameter counts differ: nrt ${ln.params} + ${ln.trained}, PyTorch ${la.params} + ${la.trained}`,
      );
  }
  const load0 = loadavg()[0];
  const t0 = performance.now();
  log(`nrt bench: ${cpus()[0].model}, ${cpus().length} cores, node ${process.version}, torch ${info.torch}`);
  log(`reference model: Llama V=${REF.vocabSize} C=${REF.hiddenSize} L=${REF.numLayers} heads=${REF.numHeads} `);
  log(
    `  F=${REF.intermediateSize}, untied, ${info.params} parameters; batch ${REF.batch}x${REF.seqLen}; rounds ${rounds}`,
  );
  if (params135)
    log(
      `135M lines: V=${M135.vocabSize} C=${M135.hiddenSize} L=${M135.numLayers} heads=${M135.numHeads}/${M135.numKvHeads} ` +
        `F=${M135.intermediateSize}, tied, ${params135} parameters; batch ${M135.batch}x${M135.seqLen}; ` +
        `sampling ${M135.streams} streams x ${M135.maxNew} tokens`,
    );
  const rows = [];
  const emit = (row) => {
    rows.push(row);
    if (json) {
      const { name, nrt, peer, unit, ratio } = row;
      process.stdout.write(
        `${JSON.stringify({ name, nrt: +fmt(nrt), peer: +fmt(peer), unit, ratio: +ratio.toFixed(3) })}\n`,
      );
    }
  };
  const detail = [];
  for (const b of benches) {
    const sides = sideOf(b.lines);
    const name = b.lines.map((l) => l.name).join(", ");
    const memoryGB = b.memoryGB && (onlyThreads ? b.memoryGB / 2 : b.memoryGB); // one setting a side, not two
    // the idle workers of the benchmarks before keep what their allocators did not return: ended first, so that
    // the memory waited for is not our own (fresh workers start when the benchmark asks for them)
    if (memoryGB) await Promise.all(allWorkers().map((w) => w.stop()));
    if (memoryGB && !(await waitForMemory(memoryGB, name))) {
      log(`  ${name}: skipped, less than ${memoryGB.toFixed(0)} GB of free memory for 10 minutes`);
      continue;
    }
    const tb = performance.now();
    const r = await measure(b, sides, b.setup?.());
    for (const l of b.lines.filter((x) => selected(x.name))) {
      if (!r.best.nrt || !r.best[l.side]) {
        log(`  ${l.name}: no result (every setting of a side was dropped)`);
        continue;
      }
      const [nrt, peer] = [r.best.nrt.median, r.best[l.side].median];
      emit({ ...l, unit: b.unit, nrt, peer, ratio: nrt / peer, labels: [r.best.nrt.label, r.best[l.side].label] });
    }
    const shown = (e) =>
      `${e.label} ${fmt(e.median)}${e.dropped ? " (timed out)" : e.values.length ? "" : " (warm-up only)"}`;
    detail.push(`  ${name}: ${r.all.map(shown).join("; ")}`);
    log(`  ${name}: ${((performance.now() - tb) / 1e3).toFixed(0)} s`);
    for (const w of allWorkers()) if (!w.dead) await w.ask({ op: "reset" }); // the next benchmark's models get the memory
  }
  for (const w of allWorkers()) w.close();
  for (const x of SELF) {
    if (!selected(x.name)) continue;
    for (const line of runSelf(x)) emit({ ...line, target: x.target, labels: x.cols });
  }
  log(
    `\nload average: ${load0.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end; ` +
      `${((performance.now() - t0) / 60e3).toFixed(1)} min\n`,
  );
  const table = [["benchmark", "nrt", "peer", "unit", "ratio", "target", "nrt setting", "peer setting"]];
  for (const r of rows) {
    const verdict = `${r.target} ${meets(r.target, r.ratio) ? "ok" : "MISSED"}`;
    table.push([r.name, fmt(r.nrt), fmt(r.peer), r.unit, r.ratio.toFixed(3), verdict, ...r.labels]);
  }
  const width = table[0].map((_, c) => Math.max(...table.map((row) => row[c].length)));
  for (const row of table) log(row.map((x, c) => x.padEnd(width[c])).join("  "));
  if (check && rows.some((r) => !meets(r.target, r.ratio))) process.exitCode = 1;
  if (detail.length) log(`\nmedian of every setting:\n${detail.join("\n")}`);
}

for (const sig of ["SIGINT", "SIGTERM"])
  process.on(sig, () => {
    for (const w of allWorkers()) w.kill();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    process.exit(130);
  });

main()
  .catch((e) => {
    log(`bench failed: ${e.stack ?? e}`);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const w of allWorkers()) w.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });
