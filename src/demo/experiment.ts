/**
 * `nrt experiment`: a grid of methods × seeds × worlds from the shipped bases, each an ordinary run directory
 * (DIR/<world>/<method>-s<seed>/), evaluated on one held-out set per world; writes a results table with the mean
 * and spread (min–max) of each method's free accuracy (and exact-match accuracy) and trace statistics, the
 * accuracy by k, and the mechanism figures of each method (reward magnitude, advantage spread, zero-variance
 * groups, the trace term's share of the update).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type EvalResult, evaluate } from "../eval/evaluate.js";
import { loadModel } from "../io/load.js";
import { setThreads } from "../model/native.js";
import { Progress } from "../util/progress.js";
import { generate, toJsonl } from "../world/chain.js";
import type { WorldName } from "../world/question.js";
import { type Mechanism, readMechanism } from "./mechanism.js";
import { runParallel, trainRunSpec } from "./parallel-runs.js";
import { shippedBase } from "./paths.js";

export interface ExperimentOptions {
  out: string;
  worlds: WorldName[];
  methods: string[];
  seeds: number[];
  steps: number;
  evalN: number;
  threads: number;
}

export interface Cell {
  world: WorldName;
  method: string;
  seed: number;
  eval: EvalResult;
  /** the run's mechanism figures (null for the base and for SFT) */
  mech: Mechanism | null;
}

const pct = (x: number): string => (100 * x).toFixed(1);

export async function experiment(o: ExperimentOptions): Promise<{ cells: Cell[]; table: string }> {
  setThreads(o.threads);
  const cells: Cell[] = [];
  for (const world of o.worlds) {
    const dir = join(o.out, world);
    mkdirSync(join(dir, "data"), { recursive: true });
    const trainPath = join(dir, "data", "train.jsonl");
    writeFileSync(trainPath, toJsonl(generate({ world, split: "train", n: 4000, k: [3, 6], seed: 1 })));
    const evalRecords = generate({ world, split: "eval", n: o.evalN, k: [3, 6], seed: 2 }).map((r, i) => ({
      question: r.question,
      answer: r.answer,
      line: i + 1,
    }));
    const base = shippedBase(world);
    const specs = o.methods.flatMap((m) =>
      o.seeds.map((seed) =>
        trainRunSpec(`${world}/${m}-s${seed}`, {
          base,
          data: trainPath,
          outDir: join(dir, `${m}-s${seed}`),
          method: m,
          steps: o.steps,
          seed,
          termGradNorms: true,
        }),
      ),
    );
    const todo = specs.filter((s) => !existsSync(join(s.outDir, "final", "config.json")));
    const progress = new Progress(`experiment ${world}`, todo.length * o.steps);
    const outcomes = await runParallel(todo, o.threads, (st) => progress.update(st.reduce((a, s) => a + s.done, 0)));
    progress.done();
    for (const oc of outcomes) if (oc.code !== 0) process.stderr.write(`warning: ${oc.name} failed:\n${oc.stderr}\n`);
    const baseEval = evaluate(loadModel(base), evalRecords, { seed: 0 });
    cells.push({ world, method: "base", seed: 0, eval: baseEval, mech: null });
    for (const s of specs) {
      if (!existsSync(join(s.outDir, "final", "config.json"))) continue;
      const [m, seed] = [s.name.split("/")[1].replace(/-s\d+$/, ""), Number(s.name.replace(/.*-s/, ""))];
      const cache = join(s.outDir, "eval.json");
      const ev: EvalResult = existsSync(cache)
        ? (JSON.parse(readFileSync(cache, "utf8")) as EvalResult)
        : evaluate(loadModel(s.outDir), evalRecords, { seed: 0 });
      writeFileSync(cache, `${JSON.stringify(ev)}\n`);
      cells.push({ world, method: m, seed, eval: ev, mech: readMechanism(s.outDir) });
    }
  }
  const table = [
    resultsTable(cells),
    ...o.worlds.flatMap((w) => [
      "",
      `Accuracy by k, ${w}:`,
      "",
      byKTable(cells.filter((c) => c.world === w)),
      "",
      `Mechanism, ${w}:`,
      "",
      mechanismTable(cells.filter((c) => c.world === w)),
    ]),
  ].join("\n");
  writeFileSync(join(o.out, "results.md"), `${table}\n`);
  writeFileSync(join(o.out, "results.json"), `${JSON.stringify({ options: o, cells }, null, 2)}\n`);
  return { cells, table };
}

/**
 * Mean and min–max over seeds of free accuracy, mean exact-match accuracy (differs from free accuracy only where
 * answers may be phrased freely: chainlong), plus mean trace rate, length and entropy, per world and method.
 */
export function resultsTable(cells: Cell[]): string {
  const rows: string[] = [
    "| world | method | seeds | free accuracy: mean (min–max) | per seed | exact match | direct | traces | trace len | trace entropy |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ];
  const keys = [...new Set(cells.map((c) => `${c.world}\t${c.method}`))];
  for (const key of keys) {
    const [world, method] = key.split("\t");
    const cs = cells.filter((c) => c.world === world && c.method === method);
    const acc = cs.map((c) => c.eval.accuracy);
    const mean = (f: (e: EvalResult) => number) => cs.reduce((a, c) => a + f(c.eval), 0) / cs.length;
    rows.push(
      `| ${world} | ${method} | ${cs.length} | ${pct(mean((e) => e.accuracy))} (${pct(Math.min(...acc))}–${pct(Math.max(...acc))}) | ${acc.map(pct).join(" / ")} | ${pct(mean((e) => e.accuracy_exact ?? e.accuracy))} | ${pct(mean((e) => e.accuracy_direct))} | ${pct(mean((e) => e.trace_rate))} | ${mean((e) => e.trace_len_mean).toFixed(1)} | ${mean((e) => e.trace_entropy).toFixed(3)} |`,
    );
  }
  return rows.join("\n");
}

/** "mean (min–max)" of fractions in %, or the one value, or "–". */
function spread(xs: readonly number[]): string {
  if (xs.length === 0) return "–";
  if (xs.length === 1) return pct(xs[0]);
  return `${pct(xs.reduce((a, b) => a + b, 0) / xs.length)} (${pct(Math.min(...xs))}–${pct(Math.max(...xs))})`;
}

/** Cells grouped by method, in first-seen order. */
function byMethod(cells: readonly Cell[]): [string, Cell[]][] {
  const out = new Map<string, Cell[]>();
  for (const c of cells) out.set(c.method, [...(out.get(c.method) ?? []), c]);
  return [...out.entries()];
}

/** One world's free accuracy and exact-match accuracy by number of variables k: mean (min–max) over seeds. */
export function byKTable(cells: readonly Cell[]): string {
  const ks = [...new Set(cells.flatMap((c) => Object.keys(c.eval.by_k).filter((k) => /^\d+$/.test(k))))].sort(
    (a, b) => Number(a) - Number(b),
  );
  const head = ["method", ...ks.flatMap((k) => [`k=${k}`, `k=${k} exact`])];
  const rows = byMethod(cells).map(([m, cs]) => {
    const at = (k: string, key: "accuracy" | "accuracy_exact") =>
      cs.flatMap((c) => {
        const v = c.eval.by_k[k]?.[key];
        return typeof v === "number" ? [v] : [];
      });
    return [m, ...ks.flatMap((k) => [spread(at(k, "accuracy")), spread(at(k, "accuracy_exact"))])];
  });
  return markdown(head, rows);
}

/**
 * One world's mechanism figures per method, means over seeds (each run's figures are means over its steps): mean R,
 * the advantage's std, the share of zero-variance groups, the gradient norms of the trace and answer terms and the
 * trace term's share of their sum.
 */
export function mechanismTable(cells: readonly Cell[]): string {
  const head = [
    "method",
    "mean R",
    "adv std",
    "zero-variance groups",
    "‖∇ trace term‖",
    "‖∇ answer term‖",
    "trace share",
  ];
  const g = (x: number) => (x !== 0 && Math.abs(x) < 1e-3 ? x.toExponential(2) : x.toFixed(3));
  const rows = byMethod(cells.filter((c) => c.mech !== null)).map(([m, cs]) => {
    const avg = (f: (x: Mechanism) => number | null): string => {
      const xs = cs.map((c) => f(c.mech!)).filter((x): x is number => x !== null);
      return xs.length ? g(xs.reduce((a, b) => a + b, 0) / xs.length) : "–";
    };
    return [
      m,
      avg((x) => x.rewardMean),
      avg((x) => x.advStd),
      avg((x) => x.zeroStdFrac),
      avg((x) => x.gradTrace),
      avg((x) => x.gradAnswer),
      avg((x) => x.traceShare),
    ];
  });
  return markdown(head, rows);
}

function markdown(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(" | ")} |`,
    `|${head.map(() => "---|").join("")}`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}
