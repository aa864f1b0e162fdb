/**
 * `nrt experiment`: a grid of methods × seeds × worlds from the shipped bases, each an ordinary run directory
 * (DIR/<world>/<method>-s<seed>/), evaluated on one held-out set per world; writes a results table with the mean
 * and spread (min–max) of each method's free accuracy and trace statistics.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type EvalResult, evaluate } from "../eval/evaluate.js";
import { loadModel } from "../io/load.js";
import { setThreads } from "../model/native.js";
import { Progress } from "../util/progress.js";
import { generate, toJsonl } from "../world/chain.js";
import type { WorldName } from "../world/question.js";
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
        }),
      ),
    );
    const todo = specs.filter((s) => !existsSync(join(s.outDir, "final", "config.json")));
    const progress = new Progress(`experiment ${world}`, todo.length * o.steps);
    const outcomes = await runParallel(todo, o.threads, (st) => progress.update(st.reduce((a, s) => a + s.done, 0)));
    progress.done();
    for (const oc of outcomes) if (oc.code !== 0) process.stderr.write(`warning: ${oc.name} failed:\n${oc.stderr}\n`);
    const baseEval = evaluate(loadModel(base), evalRecords, { seed: 0 });
    cells.push({ world, method: "base", seed: 0, eval: baseEval });
    for (const s of specs) {
      if (!existsSync(join(s.outDir, "final", "config.json"))) continue;
      const [m, seed] = [s.name.split("/")[1].replace(/-s\d+$/, ""), Number(s.name.replace(/.*-s/, ""))];
      const cache = join(s.outDir, "eval.json");
      const ev: EvalResult = existsSync(cache)
        ? (JSON.parse(readFileSync(cache, "utf8")) as EvalResult)
        : evaluate(loadModel(s.outDir), evalRecords, { seed: 0 });
      writeFileSync(cache, `${JSON.stringify(ev)}\n`);
      cells.push({ world, method: m, seed, eval: ev });
    }
  }
  const table = resultsTable(cells);
  writeFileSync(join(o.out, "results.md"), `${table}\n`);
  writeFileSync(join(o.out, "results.json"), `${JSON.stringify({ options: o, cells }, null, 2)}\n`);
  return { cells, table };
}

/** Mean and min–max over seeds of free accuracy, plus mean trace rate, length and entropy, per world and method. */
export function resultsTable(cells: Cell[]): string {
  const rows: string[] = [
    "| world | method | seeds | free accuracy: mean (min–max) | per seed | direct | traces | trace len | trace entropy |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  const keys = [...new Set(cells.map((c) => `${c.world}\t${c.method}`))];
  for (const key of keys) {
    const [world, method] = key.split("\t");
    const cs = cells.filter((c) => c.world === world && c.method === method);
    const acc = cs.map((c) => c.eval.accuracy);
    const mean = (f: (e: EvalResult) => number) => cs.reduce((a, c) => a + f(c.eval), 0) / cs.length;
    rows.push(
      `| ${world} | ${method} | ${cs.length} | ${pct(mean((e) => e.accuracy))} (${pct(Math.min(...acc))}–${pct(Math.max(...acc))}) | ${acc.map(pct).join(" / ")} | ${pct(mean((e) => e.accuracy_direct))} | ${pct(mean((e) => e.trace_rate))} | ${mean((e) => e.trace_len_mean).toFixed(1)} | ${mean((e) => e.trace_entropy).toFixed(3)} |`,
    );
  }
  return rows.join("\n");
}
