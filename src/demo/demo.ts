/**
 * `nrt demo`: from the shipped base of a world, post-train with SFT, RLPR and NRT-WS (and VeriFree when there is
 * room), evaluate the base and every result on held-out questions, and print one comparison table with sample
 * traces before and after. Each method's run is an ordinary run directory, DIR/<method>/.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NrtError } from "../errors.js";
import { type EvalResult, evaluate } from "../eval/evaluate.js";
import { loadModel } from "../io/load.js";
import { setThreads } from "../model/native.js";
import { writeReport } from "../report/report.js";
import { RUN_CONFIG } from "../train/run-dir.js";
import { clock, Progress } from "../util/progress.js";
import { generate, toJsonl } from "../world/chain.js";
import type { WorldName } from "../world/question.js";
import { runParallel, trainRunSpec } from "./parallel-runs.js";
import { shippedBase } from "./paths.js";

export interface DemoOptions {
  out: string;
  world: WorldName;
  threads: number;
  methods: string[];
  steps: number;
  evalN: number;
  seed: number;
  /** base model directory (default: the shipped base of the world) */
  base?: string;
  /** refuse a base whose forced-trace accuracy is below this (default MIN_FORCED_ACCURACY) */
  minForcedAccuracy?: number;
}

export interface DemoRow {
  name: string;
  seconds: number;
  eval: EvalResult;
}

/** The least forced-trace accuracy for which a base counts as able to reason. */
export const MIN_FORCED_ACCURACY = 0.6;

const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

export async function demo(o: DemoOptions): Promise<{ rows: DemoRow[]; table: string }> {
  const t0 = Date.now();
  const base = o.base ?? shippedBase(o.world);
  mkdirSync(join(o.out, "data"), { recursive: true });
  const trainPath = join(o.out, "data", "train.jsonl");
  const evalPath = join(o.out, "data", "eval.jsonl");
  const kRange: [number, number] = [3, 6];
  writeFileSync(trainPath, toJsonl(generate({ world: o.world, split: "train", n: 4000, k: kRange, seed: o.seed + 1 })));
  const evalRecords = generate({ world: o.world, split: "eval", n: o.evalN, k: kRange, seed: o.seed + 2 });
  writeFileSync(evalPath, toJsonl(evalRecords));
  const records = evalRecords.map((r, i) => ({ question: r.question, answer: r.answer, line: i + 1 }));

  setThreads(o.threads);
  log(
    `nrt demo: world ${o.world}, base ${base}, ${o.methods.length} methods × ${o.steps} steps, ${o.evalN} held-out questions`,
  );
  const baseModel = loadModel(base);
  const baseEval = evaluate(baseModel, records, { seed: o.seed });
  log(
    `base: free accuracy ${pct(baseEval.accuracy)}, direct ${pct(baseEval.accuracy_direct)}, forced trace ${pct(baseEval.accuracy_forced)}, traces ${pct(baseEval.trace_rate)}`,
  );
  const minForced = o.minForcedAccuracy ?? MIN_FORCED_ACCURACY;
  if (baseEval.accuracy_forced < minForced)
    throw new NrtError(
      `the base cannot reason: with the first trace token forced it answers only ${pct(baseEval.accuracy_forced)} right (needs ${pct(minForced)}); pretrain it longer (nrt pretrain)`,
      base,
    );

  for (const m of o.methods) {
    const dir = join(o.out, m);
    if (!existsSync(dir)) continue;
    if (!existsSync(join(dir, RUN_CONFIG)))
      throw new NrtError("exists and is not an nrt run directory; choose another --out", dir);
    log(`replacing the earlier demo run ${dir}`);
    rmSync(dir, { recursive: true, force: true });
  }
  const specs = o.methods.map((m) =>
    trainRunSpec(m, { base, data: trainPath, outDir: join(o.out, m), method: m, steps: o.steps, seed: o.seed }),
  );
  const progress = new Progress("training", o.methods.length * o.steps);
  const outcomes = await runParallel(specs, Math.min(o.threads, specs.length), (st) => {
    const done = st.reduce((a, s) => a + s.done, 0);
    progress.update(done, Object.fromEntries(st.map((s) => [s.name, `${s.done}/${s.steps}`])));
  });
  progress.done();
  for (const oc of outcomes)
    if (oc.code !== 0) throw new NrtError(`training ${oc.name} failed:\n${oc.stderr}`, join(o.out, oc.name));

  const rows: DemoRow[] = [{ name: "base", seconds: 0, eval: baseEval }];
  for (const oc of outcomes) {
    log(`evaluating ${oc.name}…`);
    const ev = evaluate(loadModel(join(o.out, oc.name)), records, { seed: o.seed });
    const { questions: _, ...evalJson } = ev;
    writeFileSync(join(o.out, oc.name, "eval.json"), `${JSON.stringify(evalJson)}\n`);
    rows.push({ name: oc.name, seconds: oc.seconds, eval: ev });
  }
  const reportPath = join(o.out, "report.html");
  writeReport(
    outcomes.map((oc) => join(o.out, oc.name)),
    reportPath,
    { names: outcomes.map((oc) => oc.name), title: `nrt demo: ${o.world}` },
  );
  const table = comparisonTable(rows, o.world === "chainlong");
  const samples = sampleSection(rows);
  const summary = `${table}\n${samples}\nTotal wall time ${clock((Date.now() - t0) / 1000)} on ${o.threads} thread(s). Report: ${reportPath}\n`;
  writeFileSync(join(o.out, "summary.md"), summary);
  const compact = rows.map((r) => ({ ...r, eval: { ...r.eval, questions: undefined } }));
  writeFileSync(join(o.out, "summary.json"), `${JSON.stringify({ options: o, rows: compact }, null, 2)}\n`);
  return { rows, table: summary };
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

/**
 * The demo's table (Markdown): accuracies, trace statistics and wall time per method; with `exact`, the free run's
 * exact-match accuracy beside its accuracy (chainlong: what a string-matching verifier would count).
 */
export function comparisonTable(rows: DemoRow[], exact = false): string {
  const x = exact ? " exact match |" : "";
  const head = `| method | accuracy |${x} sampled | direct | forced | traces | trace len | trace entropy | decision entropy | time |`;
  const sep = `|---|---|${exact ? "---|" : ""}---|---|---|---|---|---|---|---|`;
  const lines = rows.map((r) => {
    const e = r.eval;
    return `| ${r.name} | ${pct(e.accuracy)} |${exact ? ` ${pct(e.accuracy_exact)} |` : ""} ${pct(e.accuracy_sampled)} | ${pct(e.accuracy_direct)} | ${pct(e.accuracy_forced)} | ${pct(e.trace_rate)} | ${e.trace_len_mean.toFixed(1)} | ${e.trace_entropy.toFixed(3)} | ${e.decision_entropy.toFixed(3)} | ${r.seconds ? clock(r.seconds) : "–"} |`;
  });
  return [head, sep, ...lines].join("\n");
}

function sampleSection(rows: DemoRow[]): string {
  const out: string[] = [];
  for (const r of rows) {
    const s = r.eval.samples.slice(0, 2);
    out.push(`${r.name}:`);
    for (const x of s)
      out.push(
        `  ${x.question}  →  ${x.trace ? `${x.trace} ` : ""}⟨answer_start⟩ ${x.predicted}   (reference ${x.reference})`,
      );
  }
  return out.join("\n");
}
