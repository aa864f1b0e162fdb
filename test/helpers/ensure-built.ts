import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/**
 * The sources a CLI command runs: the static-import closure of src/cli/main.ts and the given command files
 * (main.ts loads only the command it runs). Returns those whose compiled dist/ .js is missing or older than the .ts.
 */
function staleSources(entries: readonly string[]): string[] {
  const seen = new Set<string>();
  const stale: string[] = [];
  const visit = (rel: string): void => {
    if (seen.has(rel)) return;
    seen.add(rel);
    const src = join(ROOT, rel);
    const out = join(ROOT, "dist", rel.slice("src/".length).replace(/\.ts$/, ".js"));
    if (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs) stale.push(rel);
    for (const m of readFileSync(src, "utf8").matchAll(/^(?:import|export)[^;]*?from\s+"(\.[^"]+)\.js"/gms))
      visit(join(dirname(rel), `${m[1]}.ts`));
  };
  visit("src/cli/main.ts");
  for (const e of entries) visit(e);
  return stale;
}

/**
 * Makes sure bin/nrt.js runs the current sources of the given commands (e.g. "src/cli/commands/grad.ts"): when one
 * of them is newer than its dist/ output, runs the project's build (`npx tsc -p tsconfig.json`; type errors
 * elsewhere in the tree do not stop tsc from emitting).
 */
export function ensureBuilt(...commands: string[]): void {
  if (staleSources(commands).length === 0) return;
  const r = spawnSync("npx", ["tsc", "-p", "tsconfig.json"], { cwd: ROOT, encoding: "utf8" });
  const still = staleSources(commands);
  if (still.length > 0) {
    throw new Error(`dist/ is stale for ${still.join(", ")} even after npx tsc:\n${r.stdout}${r.stderr}`);
  }
}
