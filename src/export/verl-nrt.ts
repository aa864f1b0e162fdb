/**
 * `nrt export --format verl-nrt`: nrt's data, model and settings as the official NRT code's recipe
 * (`recipe/nrt` of sharkwyf/native-reasoning-models, a verl fork) takes them. One output directory, written
 * atomically: train.parquet (and test.parquet), model/, overrides.txt, run.sh, README.md.
 *
 * Before anything is written, every row is tokenised the way the recipe will (the exported chat template rendered
 * and encoded with the exported tokenizer; `reference_content + eos_token` encoded as one string) and must give
 * exactly the ids nrt's trainer uses for that record; otherwise the export fails naming the record.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { ChatTemplate } from "../chat/template.js";
import type { TrainConfig } from "../config/train-config.js";
import { contextLeft, type Example, recordExamples } from "../data/format.js";
import { type QaFields, type QaFile, qaFields, readQaFile } from "../data/qa.js";
import { NrtError } from "../errors.js";
import { type FileData, writeDirAtomic } from "../io/atomic.js";
import { type LoadedModel, loadMerged } from "../io/load.js";
import { modelDirFiles } from "../io/model-dir.js";
import { type VerlNrtModel, verlNrtModel } from "./verl-nrt-model.js";
import { type Override, overridesText, type Unmapped, verlNrtOverrides } from "./verl-nrt-overrides.js";
import { verlNrtParquet } from "./verl-nrt-parquet.js";
import { readmeText, runScript } from "./verl-nrt-readme.js";
import { type VerlNrtRow, verlNrtRows } from "./verl-nrt-rows.js";

export interface VerlNrtOptions {
  /** model or run directory */
  model: string;
  /** training data, JSON Lines of nrt's QA records */
  data: string;
  /** held-out data → test.parquet */
  evalData?: string;
  /** the resolved `nrt train` settings the overrides are made from */
  settings: TrainConfig;
  /** where the settings came from, for README.md (e.g. "run.yaml", "defaults") */
  settingsFrom: string;
}

export interface VerlNrtResult {
  out: string;
  trainRows: number;
  testRows: number | null;
  responseStartId: number;
  origin: VerlNrtModel["origin"];
  templateAdded: boolean;
  overrides: Override[];
  unmapped: Unmapped[];
  warnings: string[];
}

/** Files that mark a directory as an earlier verl-nrt export, which a new export may replace. */
const MARKERS = ["overrides.txt", "run.sh", join("model", "config.json")];

/** Writes the export of `opts` into the directory `out` (created, or an earlier export replaced). */
export function exportVerlNrt(out: string, opts: VerlNrtOptions): VerlNrtResult {
  checkOut(out);
  const cfg = opts.settings;
  const source = loadMerged(opts.model);
  const vm = verlNrtModel(source);
  const maxLen = contextLeft(source.model.config.maxPositionEmbeddings, cfg.maxTraceTokens, "max_trace_tokens");
  const train = readSet(opts.data, source, vm, maxLen, cfg.skipInvalid, qaFields(cfg));
  const test = opts.evalData ? readSet(opts.evalData, source, vm, maxLen, cfg.skipInvalid, qaFields(cfg)) : null;
  const all = [...train.examples, ...(test?.examples ?? [])];
  const r = verlNrtOverrides(cfg, {
    trainRows: train.rows.length,
    maxPromptTokens: Math.max(...all.map((e) => e.prompt.length)),
    maxAnswerTokens: Math.max(...all.map((e) => e.answer.length)),
    hasEval: test !== null,
    context: source.model.config.maxPositionEmbeddings,
  });
  for (const s of [train, test]) {
    if (s && s.qa.skipped.length > 0)
      r.warnings.push(`${s.file}: skipped ${s.qa.skipped.length} invalid record(s) (skip_invalid)`);
  }
  const name = basename(resolve(out));
  const micro = microBatch(cfg.promptsPerStep * cfg.groupSize);
  const header = [
    `nrt export --format verl-nrt: Hydra overrides of recipe/nrt (python3 -m recipe.nrt.main_nrt), one a line.`,
    `From the settings of ${opts.settingsFrom}; run.sh adds the data and model paths and the machine's settings.`,
    "Each override follows a comment naming the nrt setting it comes from.",
  ];
  const files: Record<string, FileData> = {};
  const modelFiles = modelDirFiles(join(out, "model"), vm.model, vm.files);
  for (const [k, v] of Object.entries(modelFiles)) files[`model/${k}`] = v;
  files["train.parquet"] = verlNrtParquet(train.rows);
  if (test) files["test.parquet"] = verlNrtParquet(test.rows);
  files["overrides.txt"] = overridesText(r, header);
  files["run.sh"] = runScript(test !== null, micro);
  files["README.md"] = readmeText({
    name,
    model: opts.model,
    train: { file: opts.data, rows: train.rows.length },
    test: test && opts.evalData ? { file: opts.evalData, rows: test.rows.length } : null,
    settings: opts.settingsFrom,
    responseStartId: vm.responseStartId,
    origin: vm.origin,
    templateAdded: vm.templateAdded,
    microBatch: micro,
    overrides: r,
  });
  writeDirAtomic(out, files);
  return {
    out,
    trainRows: train.rows.length,
    testRows: test ? test.rows.length : null,
    responseStartId: vm.responseStartId,
    origin: vm.origin,
    templateAdded: vm.templateAdded,
    overrides: r.overrides,
    unmapped: r.unmapped,
    warnings: r.warnings,
  };
}

interface DataSet {
  file: string;
  qa: QaFile;
  rows: VerlNrtRow[];
  examples: Example[];
}

/** Reads one JSONL file into rows, checking that the recipe would tokenise each row as nrt does. */
function readSet(
  file: string,
  source: LoadedModel,
  vm: VerlNrtModel,
  maxLen: number,
  skipInvalid: boolean,
  fields: QaFields,
): DataSet {
  const qa = readQaFile(file, { skipInvalid, fields });
  const examples = recordExamples(source.tokenizer, source.chatTemplate, qa.records, maxLen, file);
  const rows = verlNrtRows(qa.records, file);
  const template = new ChatTemplate(vm.chatTemplate, vm.specialTokens, "model/tokenizer_config.json: chat_template");
  const eos = vm.specialTokens.eos_token;
  if (eos === undefined)
    throw new NrtError("the model names no ⟨eos⟩ token (the recipe appends eos_token)", source.dir);
  rows.forEach((row, i) => {
    const at = `${file}:${qa.records[i].line}`;
    const prompt = vm.tokenizer.encode(template.render(row.prompt, { addGenerationPrompt: true, where: at }));
    const answer = vm.tokenizer.encode(row.reference_content + eos);
    if (!same(prompt, examples[i].prompt))
      throw new NrtError(
        `the recipe would see the prompt as [${prompt.join(", ")}], nrt trains on [${examples[i].prompt.join(", ")}]`,
        at,
      );
    if (!same(answer, examples[i].answer))
      throw new NrtError(
        `the recipe would see the answer as [${answer.join(", ")}], nrt trains on [${examples[i].answer.join(", ")}]`,
        at,
      );
  });
  return { file, qa, rows, examples };
}

function same(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The largest micro-batch ≤ 16 that divides the n sequences of a step (one GPU): run.sh's default. */
export function microBatch(n: number): number {
  for (let d = Math.min(16, n); d > 1; d--) if (n % d === 0) return d;
  return 1;
}

/** `out` may be new, empty, or an earlier export (which is replaced); anything else is refused. */
function checkOut(out: string): void {
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw new NrtError("exists and is not a directory", out);
  if (readdirSync(out).length === 0) return;
  if (MARKERS.every((m) => existsSync(join(out, m)))) return;
  throw new NrtError("is not empty and holds no earlier verl-nrt export: choose another -o or empty it", out);
}
