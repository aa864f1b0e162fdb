import type { Command } from "commander";
import YAML from "yaml";
import { addFieldOptions } from "../../config/commander.js";
import { trainFields } from "../../config/train-config.js";
import { NrtError } from "../../errors.js";
import { snake } from "../../util/case.js";
import { resolveTrainConfig } from "./train.js";

/** The configuration under its config-file keys (snake_case); unset optional settings are left out. */
export function configFileForm(cfg: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(cfg).flatMap(([k, v]) => (v === undefined ? [] : [[snake(k), v]])));
}

export function register(program: Command): void {
  const cmd = program
    .command("config")
    .description("print the resolved configuration of `nrt train` (defaults ← --config file ← flags)")
    .argument("[model]", "model directory")
    .option("--print", "print the configuration (what this command does; the flag is accepted for clarity)")
    .option("--config <file>", "YAML or JSON file of settings (snake_case keys); flags override it")
    .option("--resume <run_dir>", "the configuration a resumed run would use")
    .option("--json", "print one JSON object instead of YAML");
  addFieldOptions(cmd, trainFields).action((pos: string | undefined, o: Record<string, unknown>) => {
    let cfg: Record<string, unknown>;
    try {
      cfg = resolveTrainConfig(o, pos);
    } catch (e) {
      // the same checks as `nrt train`, under this command's name
      if (e instanceof NrtError) throw new NrtError(e.message.replace(/^nrt train: /, "nrt config: "));
      throw e;
    }
    const out = configFileForm(cfg);
    // the YAML form is a valid --config file: `nrt config --print … > run.yaml && nrt train --config run.yaml`
    process.stdout.write(o.json ? `${JSON.stringify(out)}\n` : YAML.stringify(out));
  });
}
