import type { Command } from "commander";
import { kebab } from "../util/case.js";
import { baseType, type Fields } from "./schema.js";

/**
 * Adds one CLI option per schema field: `--kebab-case <value>`, its doc and default in --help. A boolean field
 * is a switch, as CLI users write one: `--skip-invalid` (true), `--no-skip-invalid` (false), or
 * `--skip-invalid true|false`. No defaults are given to commander: an unset flag leaves the config file's value.
 */
export function addFieldOptions(cmd: Command, fields: Fields, skip: readonly string[] = []): Command {
  for (const [k, f] of Object.entries(fields)) {
    if (skip.includes(k)) continue;
    const def = f.default === undefined ? "" : ` (default: ${JSON.stringify(f.default)})`;
    const alias = f.alias ? `${f.alias}, ` : "";
    if (baseType(f.schema) === "boolean") {
      cmd.option(`${alias}--${kebab(k)} [true|false]`, `${f.doc}${def}`);
      cmd.option(`--no-${kebab(k)}`, `the same as --${kebab(k)} false`);
    } else cmd.option(`${alias}--${kebab(k)} <value>`, `${f.doc}${def}`);
  }
  return cmd;
}
