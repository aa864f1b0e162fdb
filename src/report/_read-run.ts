import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve, sep } from "node:path";
import { NrtError } from "../errors.js";
import { ALARMS_FILE, METRICS_FILE, RUN_CONFIG } from "../train/run-dir.js";

/** Optional files of a run directory that only the report reads. */
export const SAMPLES_FILE = "samples.jsonl";
export const EVAL_FILE = "eval.json";

/** One metrics.jsonl line: `step` and the numeric metrics; a null (a non-finite number in JSON) is dropped. */
export type MetricsRow = { step: number } & Record<string, number>;

export interface AlarmRow {
  step: number;
  name: string;
  message: string;
}

/** One samples.jsonl line: a trace sampled during training, with its reward (see the report README section). */
export interface SampleRow {
  step: number;
  question: string;
  trace: string;
  /** the model's answer, when the trainer generated one */
  answer?: string;
  reference: string;
  /** R of the trace; absent for methods without a reward (SFT) */
  reward?: number;
}

/** The fields of an `nrt eval --json` object that the report shows; others are kept but unused. */
export interface EvalJson {
  n: number;
  accuracy: number;
  accuracy_exact?: number;
  accuracy_sampled?: number;
  accuracy_direct?: number;
  accuracy_forced?: number;
  trace_rate?: number;
  trace_len_mean?: number;
  trace_entropy?: number;
  decision_entropy?: number;
  by_k?: Record<string, { n: number; accuracy: number; accuracy_direct?: number; accuracy_exact?: number }>;
  samples?: { question: string; reference: string; trace: string; predicted: string; correct: boolean }[];
}

/** Everything the report reads from one run directory. */
export interface RunData {
  name: string;
  dir: string;
  metrics: MetricsRow[];
  /** `train` of run_config.json ({} when absent) */
  settings: Record<string, unknown>;
  alarms: AlarmRow[];
  samples: SampleRow[];
  eval: EvalJson | null;
  /** problems that did not stop the report (e.g. a half-written last line of a running job) */
  warnings: string[];
}

/**
 * Reads JSON Lines; every bad line is an error naming `file:line`, except a last line without its newline that
 * does not parse (a run still writing it), which becomes a warning.
 */
export function readJsonl(path: string, warnings: string[]): { line: number; value: Record<string, unknown> }[] {
  const text = readFileSync(path, "utf8");
  const lines = text.split("\n");
  const out: { line: number; value: Record<string, unknown> }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const s = lines[i].trim();
    if (s === "") continue;
    let v: unknown;
    try {
      v = JSON.parse(s);
    } catch (e) {
      if (i === lines.length - 1) {
        warnings.push(`${path}:${i + 1}: ignored an incomplete last line`);
        continue;
      }
      throw new NrtError(`not JSON (${(e as Error).message})`, `${path}:${i + 1}`);
    }
    if (typeof v !== "object" || v === null || Array.isArray(v))
      throw new NrtError("expected a JSON object", `${path}:${i + 1}`);
    out.push({ line: i + 1, value: v as Record<string, unknown> });
  }
  return out;
}

const isNum = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);

function stepOf(v: Record<string, unknown>, where: string): number {
  if (!Number.isInteger(v.step) || (v.step as number) < 0)
    throw new NrtError(`"step" must be an integer ≥ 0, got ${JSON.stringify(v.step)}`, where);
  return v.step as number;
}

/** metrics.jsonl → rows sorted by step (a resumed run's repeated steps keep the last line written). */
export function parseMetrics(path: string, warnings: string[]): MetricsRow[] {
  const bySteps = new Map<number, MetricsRow>();
  for (const { line, value } of readJsonl(path, warnings)) {
    const row = { step: stepOf(value, `${path}:${line}`) } as MetricsRow;
    for (const [k, x] of Object.entries(value)) if (k !== "step" && isNum(x)) row[k] = x;
    bySteps.set(row.step, row);
  }
  return [...bySteps.values()].sort((a, b) => a.step - b.step);
}

function str(v: Record<string, unknown>, key: string, where: string, optional = false): string | undefined {
  const x = v[key];
  if (x === undefined && optional) return undefined;
  if (typeof x !== "string") throw new NrtError(`"${key}" must be a string, got ${JSON.stringify(x)}`, where);
  return x;
}

function parseSamples(path: string, warnings: string[]): SampleRow[] {
  return readJsonl(path, warnings).map(({ line, value: v }) => {
    const where = `${path}:${line}`;
    if (v.reward !== undefined && v.reward !== null && !isNum(v.reward))
      throw new NrtError(`"reward" must be a number, got ${JSON.stringify(v.reward)}`, where);
    const answer = str(v, "answer", where, true);
    return {
      step: stepOf(v, where),
      question: str(v, "question", where)!,
      trace: str(v, "trace", where)!,
      reference: str(v, "reference", where)!,
      ...(answer !== undefined && { answer }),
      ...(isNum(v.reward) && { reward: v.reward }),
    };
  });
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new NrtError(`not JSON (${(e as Error).message})`, path);
  }
}

/** Reads a run directory; only metrics.jsonl is required. */
export function readRun(dir: string, name = basename(resolve(dir))): RunData {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new NrtError("not a directory", dir);
  const metricsPath = join(dir, METRICS_FILE);
  if (!existsSync(metricsPath)) throw new NrtError(`not a run directory (no ${METRICS_FILE})`, dir);
  const warnings: string[] = [];
  const metrics = parseMetrics(metricsPath, warnings);
  const cfgPath = join(dir, RUN_CONFIG);
  const cfg = existsSync(cfgPath) ? (readJson(cfgPath) as { train?: Record<string, unknown> }) : {};
  const alarmsPath = join(dir, ALARMS_FILE);
  const alarms = existsSync(alarmsPath)
    ? readJsonl(alarmsPath, warnings).map(({ line, value: v }) => ({
        step: stepOf(v, `${alarmsPath}:${line}`),
        name: String(v.name ?? "?"),
        message: String(v.message ?? ""),
      }))
    : [];
  const samplesPath = join(dir, SAMPLES_FILE);
  const samples = existsSync(samplesPath) ? parseSamples(samplesPath, warnings) : [];
  const evalPath = join(dir, EVAL_FILE);
  let ev: EvalJson | null = null;
  if (existsSync(evalPath)) {
    const e = readJson(evalPath) as EvalJson;
    if (typeof e !== "object" || e === null || !isNum(e.accuracy))
      throw new NrtError('expected an `nrt eval --json` object (no numeric "accuracy")', evalPath);
    ev = e;
  }
  return { name, dir, metrics, settings: cfg.train ?? {}, alarms, samples, eval: ev, warnings };
}

/** Run names: the directory's base name, with parent directories added until the names are distinct. */
export function runNames(dirs: readonly string[]): string[] {
  const parts = dirs.map((d) => resolve(d).split(sep).filter(Boolean));
  for (let depth = 1; ; depth++) {
    const names = parts.map((p) => p.slice(-depth).join("/"));
    if (new Set(names).size === names.length || parts.every((p) => p.length <= depth))
      return names.map((n, i) => (names.indexOf(n) < i ? `${n} (${i + 1})` : n));
  }
}
