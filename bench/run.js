// `npm run bench [-- --json] [--rounds N] [--only a,b] [--check]`: nrt against PyTorch on this machine (SPEC §8,
// issue 5). --check: exit code 1 when a ratio misses its target (otherwise only errors fail the run).
//
// Both sides run in the same run, interleaved: each round runs a chunk of repetitions of every thread setting of
// nrt and of PyTorch, alternating sides (and reversing the order every other round), after one warm-up chunk each.
// A setting's value is the median of all its repetitions; each side is reported at its fastest setting.
// Then the lines that compare nrt with itself (SPEC §8), from their own scripts: soak.js (soak_rss_growth, issue 9)
// and engine-http.js (engine_http_overhead, issue 10); and nrt-step.js (nrt_step, issue 6: one full NRT step against
// a PyTorch one, bench/peer_nrt_step.py, with its phase split on stderr); --only selects among all names.
// The table (and progress) goes to stderr; with --json, stdout gets one line per benchmark:
//   {"name", "nrt", "peer", "unit", "ratio"} with ratio = nrt / peer.
// Needs dist/ (npx tsc -p tsconfig.json), the addon (native/build) and /usr/bin/python3 with torch.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { cpus, loadavg } from "node:os";
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

const argv = process.argv.slice(2);
const json = argv.includes("--json");
const opt = (flag, def) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : def);
const rounds = Number(opt("--rounds", "5"));
const check = argv.includes("--check");
const only = opt("--only", "")
  .split(",")
  .filter((s) => s);
const log = (s) => process.stderr.write(`${s}\n`);

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const workers = {
  nrt: SETTINGS.nrt.map((s) => new Worker("nrt", s)),
  peer: SETTINGS.peer.map((s) => new Worker("peer", s)),
};
const values = async (w, cmd) => (await w.ask(cmd)).values;

// name, unit, whether higher is better, the target on nrt/peer, and one chunk of repetitions on each side
const BENCHES = [1024, 2048]
  .map((n) => ({
    name: `sgemm_${n}`,
    unit: "GFLOP/s",
    higher: true,
    target: ">= 0.95",
    run: (w) => values(w, { op: "sgemm", n, reps: n > 1024 ? 2 : 5 }),
  }))
  .concat([
    {
      name: "train_step",
      unit: "ms",
      higher: false,
      target: "<= 1.0",
      run: (w) => values(w, { op: "train", reps: 3, config: REF }),
    },
    {
      name: "sample_batched",
      unit: "tokens/s",
      higher: true,
      target: ">= 2",
      run: (w) => values(w, { op: "sample", reps: 1, config: REF }),
    },
    {
      name: "train_peak_rss",
      unit: "MB",
      higher: false,
      target: "<= 1.2",
      rounds: 1,
      run: async (w) => [trainPeakRss(w.side, w.setting, REF, RSS_STEPS)],
    },
  ]);

// After the first round, a setting more than PRUNE times slower than the best of its side stops being run (under
// load, oversubscribed thread settings can be 10x slower and would dominate the run time); its median so far is
// still listed.
const PRUNE = 2;

async function measure(b) {
  const entries = (list) => list.map((w) => ({ side: w.side, label: w.label, run: () => b.run(w), values: [] }));
  const mine = entries(workers.nrt);
  const theirs = entries(workers.peer);
  let order = [];
  for (let i = 0; i < Math.max(mine.length, theirs.length); i++) order.push(...[mine[i], theirs[i]].filter(Boolean));
  const all = [...order];
  const better = (x, y) => (b.higher ? x.median > y.median : x.median < y.median);
  const best = (list) => list.reduce((a, e) => (better(e, a) ? e : a));
  const n = b.rounds ?? rounds;
  if (!b.rounds) for (const e of order) await e.run(); // warm-up
  for (let r = 0; r < n; r++) {
    for (const e of r % 2 ? [...order].reverse() : order) e.values.push(...(await e.run()));
    for (const e of order) e.median = median(e.values);
    if (r === 0) {
      const keep = (e) => {
        const top = best(order.filter((x) => x.side === e.side));
        return (b.higher ? top.median / e.median : e.median / top.median) <= PRUNE;
      };
      for (const e of order.filter((x) => !keep(x))) log(`  ${b.name}: dropped ${e.label} (over ${PRUNE}x slower)`);
      order = order.filter(keep);
    }
    log(`  ${b.name}: round ${r + 1}/${n}`);
  }
  return { ...b, all, nrtBest: best(mine), peerBest: best(theirs) };
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
  const info = await workers.peer[0].ask({ op: "info", config: REF });
  const { params } = await workers.nrt[0].ask({ op: "info", config: REF });
  if (params !== info.params) throw new Error(`parameter counts differ: nrt ${params}, PyTorch ${info.params}`);
  const load0 = loadavg()[0];
  log(`nrt bench: ${cpus()[0].model}, ${cpus().length} cores, node ${process.version}, torch ${info.torch}`);
  log(`reference model: Llama V=${REF.vocabSize} C=${REF.hiddenSize} L=${REF.numLayers} heads=${REF.numHeads} `);
  log(
    `  F=${REF.intermediateSize}, untied, ${info.params} parameters; batch ${REF.batch}x${REF.seqLen}; rounds ${rounds}`,
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
  for (const b of BENCHES) {
    if (only.length && !only.includes(b.name)) continue;
    const r = await measure(b);
    const [nrt, peer] = [r.nrtBest.median, r.peerBest.median];
    emit({ ...b, nrt, peer, ratio: nrt / peer, labels: [r.nrtBest.label, r.peerBest.label] });
    detail.push(`  ${r.name}: ${r.all.map((e) => `${e.label} ${fmt(e.median)}`).join("; ")}`);
  }
  for (const w of [...workers.nrt, ...workers.peer]) w.close();
  for (const x of SELF) {
    if (only.length && !only.includes(x.name)) continue;
    for (const line of runSelf(x)) emit({ ...line, target: x.target, labels: x.cols });
  }
  log(`\nload average: ${load0.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end\n`);
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

main()
  .catch((e) => {
    log(`bench failed: ${e.stack ?? e}`);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const w of [...workers.nrt, ...workers.peer]) w.close();
  });
