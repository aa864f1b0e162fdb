import { readFileSync } from "node:fs";
import type { Command } from "commander";
import YAML from "yaml";
import { addFieldOptions } from "../../config/commander.js";
import { resolveFields } from "../../config/schema.js";
import { type TrainConfig, trainFields } from "../../config/train-config.js";
import { NrtError } from "../../errors.js";
import { RUN_CONFIG } from "../../train/run-dir.js";
import { trainAsync } from "../../train/trainer.js";
import { snakeKeys } from "../../util/case.js";

/** Reads a YAML or JSON config file into an object of snake_case keys. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new NrtError(`cannot read config (${(e as NodeJS.ErrnoException).code})`, path);
  }
  let v: unknown;
  try {
    v = path.endsWith(".json") ? JSON.parse(text) : YAML.parse(text);
  } catch (e) {
    throw new NrtError(`not valid ${path.endsWith(".json") ? "JSON" : "YAML"}: ${(e as Error).message}`, path);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new NrtError("must hold a mapping of keys", path);
  return v as Record<string, unknown>;
}

/** The resolved configuration of `nrt train`: defaults ← config file ← flags; a run directory's own for --resume. */
export function resolveTrainConfig(o: Record<string, unknown>, positionalModel?: string): TrainConfig {
  const cli = { ...o };
  if (positionalModel && cli.model === undefined) cli.model = positionalModel;
  let file: Record<string, unknown> | undefined = o.config ? readConfigFile(o.config as string) : undefined;
  if (o.resume) {
    const runPath = `${o.resume as string}/${RUN_CONFIG}`;
    const runCfg = readConfigFile(runPath).train;
    if (typeof runCfg !== "object" || runCfg === null || Array.isArray(runCfg))
      throw new NrtError(`not an nrt run configuration (no "train" mapping)`, runPath);
    file = snakeKeys(runCfg as Record<string, unknown>);
    cli.out = o.resume;
  }
  let cfg: ReturnType<typeof resolveFields<typeof trainFields>>;
  try {
    cfg = resolveFields(trainFields, file, cli, o.config ? String(o.config) : "flags");
  } catch (e) {
    throw e instanceof NrtError ? e : new NrtError((e as Error).message); // a bad setting: a message, not a stack
  }
  for (const k of ["model", "data", "out"] as const)
    if (!cfg[k]) throw new NrtError(`--${k} is required (or \`${k}\` in the config file)`, "nrt train");
  return cfg as TrainConfig;
}

export function register(program: Command): void {
  const cmd = program
    .command("train")
    .description("post-train a model on question–answer pairs with NRT or a baseline method (SPEC §3–5)")
    .argument("[model]", "model directory")
    .option("--config <file>", "YAML or JSON file of settings (snake_case keys); flags override it")
    .option("--resume <run_dir>", "continue a run from its latest checkpoint")
    .option("--print-config", "print the resolved configuration as JSON and exit");
  addFieldOptions(cmd, trainFields).action(async (pos: string | undefined, o: Record<string, unknown>) => {
    const cfg = resolveTrainConfig(o, pos);
    if (o.printConfig) {
      process.stdout.write(`${JSON.stringify(cfg, null, 2)}\n`);
      return;
    }
    const r = await trainAsync(cfg, {}, Boolean(o.resume)); // async: Ctrl-C is seen between steps
    if (r.stopped === "done") process.stderr.write(`done: ${r.steps} steps; model in ${r.outDir}/final\n`);
  });
}
