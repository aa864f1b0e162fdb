import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { resolveFields } from "../../config/schema.js";
import { type TrainConfig, trainFields } from "../../config/train-config.js";
import { NrtError } from "../../errors.js";
import { exportGguf, type GgufDtype } from "../../export/to-gguf.js";
import { exportVerlNrt } from "../../export/verl-nrt.js";
import { RUN_CONFIG } from "../../train/run-dir.js";
import { kebab, snakeKeys } from "../../util/case.js";
import { readConfigFile } from "./train.js";

const FORMATS = ["gguf", "verl-nrt"] as const;

interface ExportOptions {
  model?: string;
  format: string;
  out: string;
  dtype: string;
  name?: string;
  json?: boolean;
  data?: string;
  evalData?: string;
  config?: string;
}

export function register(program: Command): void {
  program
    .command("export")
    .description(
      "write a model in another format: --format gguf (llama.cpp), or verl-nrt (data, model and settings for the official NRT code)",
    )
    .argument("[model]", "model or run directory")
    .option("--model <dir>", "model or run directory")
    .requiredOption("--format <name>", `output format (${FORMATS.join(" or ")})`)
    .requiredOption("-o, --out <path>", "output: a file for gguf (model.gguf), a directory for verl-nrt")
    .option("--dtype <type>", "gguf: f32 or f16 for the weight matrices (norm weights stay f32)", "f32")
    .option("--name <text>", "gguf: general.name in the GGUF (default: the directory's name)")
    .option("--data <jsonl>", "verl-nrt: training data → train.parquet (default: the settings' `data`)")
    .option("--eval-data <jsonl>", "verl-nrt: held-out data → test.parquet")
    .option(
      "--config <file>",
      "verl-nrt: `nrt train` settings (YAML or JSON, as nrt train --config); over a run directory's own",
    )
    .option("--json", "print one JSON object on stdout")
    .action((pos: string | undefined, o: ExportOptions) => {
      if (!(FORMATS as readonly string[]).includes(o.format))
        throw new NrtError(`unknown format ${JSON.stringify(o.format)} (nrt writes ${FORMATS.join(", ")})`, "--format");
      if (o.format === "verl-nrt") return verlNrt(pos, o);
      const path = o.model ?? pos;
      if (!path) throw new NrtError("a model is required (--model DIR)", "nrt export");
      for (const k of ["data", "evalData", "config"] as const)
        if (o[k] !== undefined) throw new NrtError("only for --format verl-nrt", `--${kebab(k)}`);
      if (o.dtype !== "f32" && o.dtype !== "f16") {
        throw new NrtError(`must be f32 or f16, got ${JSON.stringify(o.dtype)}`, "--dtype");
      }
      const r = exportGguf(path, o.out, { dtype: o.dtype as GgufDtype, name: o.name });
      for (const w of r.warnings) process.stderr.write(`nrt: warning: ${w}\n`);
      if (o.json) process.stdout.write(`${JSON.stringify({ ...r, dtype: o.dtype })}\n`);
      else {
        process.stderr.write(
          `wrote ${r.path}: GGUF v3, ${r.tensors} tensors, ${o.dtype}, tokenizer ${r.tokenizerModel}, ${r.bytes} bytes\n`,
        );
      }
    });
}

function verlNrt(pos: string | undefined, o: ExportOptions): void {
  if (o.name !== undefined) throw new NrtError("only for --format gguf", "--name");
  if (o.dtype !== "f32") throw new NrtError("only for --format gguf (verl-nrt writes the model in F32)", "--dtype");
  const { settings, from } = exportSettings(o.model ?? pos, o.config);
  const model = o.model ?? pos ?? settings.model;
  if (!model) throw new NrtError("a model is required (MODEL, --model DIR, or `model` in --config)", "nrt export");
  const data = o.data ?? settings.data;
  if (!data) throw new NrtError("training data is required (--data FILE, or `data` in --config)", "nrt export");
  const r = exportVerlNrt(o.out, { model, data, evalData: o.evalData, settings, settingsFrom: from });
  for (const w of r.warnings) process.stderr.write(`nrt: warning: ${w}\n`);
  if (o.json) process.stdout.write(`${JSON.stringify(r)}\n`);
  else {
    process.stderr.write(
      `wrote ${r.out}/: train.parquet (${r.trainRows} rows)${r.testRows === null ? "" : `, test.parquet (${r.testRows} rows)`}, ` +
        `model/ (<|response_start|> = token ${r.responseStartId}, ${r.origin}), overrides.txt (${r.overrides.length} keys), run.sh, README.md\n`,
    );
  }
}

/**
 * The `nrt train` settings of an export: defaults ← a run directory's own run_config.json (when `model` is a run
 * directory) ← the --config file, each checked as `nrt train` checks them.
 */
function exportSettings(
  model: string | undefined,
  config: string | undefined,
): { settings: TrainConfig; from: string } {
  let file: Record<string, unknown> = {};
  const from: string[] = [];
  const runCfg = model ? join(model, RUN_CONFIG) : undefined;
  if (runCfg && existsSync(runCfg)) {
    const train = readConfigFile(runCfg).train;
    if (typeof train !== "object" || train === null || Array.isArray(train))
      throw new NrtError(`not an nrt run configuration (no "train" mapping)`, runCfg);
    file = snakeKeys(train as Record<string, unknown>);
    resolve(file, runCfg);
    from.push(runCfg);
  }
  if (config) {
    file = { ...file, ...readConfigFile(config) };
    from.push(config);
  }
  return { settings: resolve(file, config ?? runCfg ?? "defaults"), from: from.join(" over ") || "nrt's defaults" };
}

function resolve(file: Record<string, unknown>, where: string): TrainConfig {
  try {
    return resolveFields(trainFields, file, {}, where) as TrainConfig;
  } catch (e) {
    throw e instanceof NrtError ? e : new NrtError((e as Error).message); // a bad setting: a message, not a stack
  }
}
