import type { Command } from "commander";
import { kebab } from "../util/case.js";
import type { Fields } from "./schema.js";

/** Adds one CLI option per schema field: --kebab-case <value>, its doc and default in --help. */
export function addFieldOptions(cmd: Command, fields: Fields, skip: readonly string[] = []): Command {
  for (const [k, f] of Object.entries(fields)) {
    if (skip.includes(k)) continue;
    const flag = `${f.alias ? `${f.alias}, ` : ""}--${kebab(k)} <value>`;
    const def = f.default === undefined ? "" : ` (default: ${JSON.stringify(f.default)})`;
    cmd.option(flag, `${f.doc}${def}`);
  }
  return cmd;
}
