// `nrt train --help`, `nrt config --print` and config-file errors, through the commands' commander programs (in
// process: no build, no child process).
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterEach, describe, expect, it, vi } from "vitest";
import * as configCmd from "../../src/cli/commands/config.js";
import * as trainCmd from "../../src/cli/commands/train.js";
import { resolveTrainConfig } from "../../src/cli/commands/train.js";
import { trainFields } from "../../src/config/train-config.js";
import { NrtError } from "../../src/errors.js";
import { kebab } from "../../src/util/case.js";

const dir = mkdtempSync(join(tmpdir(), "nrt-config-"));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const base = "model: m\ndata: qa.jsonl\nout: runs/a\n";

function program(): Command {
  const p = new Command("nrt").exitOverride();
  trainCmd.register(p);
  configCmd.register(p);
  for (const c of p.commands) c.exitOverride();
  return p;
}

/** stdout of `nrt ...args` run in process */
async function run(...args: string[]): Promise<string> {
  let out = "";
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((s: string | Uint8Array) => {
    out += String(s);
    return true;
  });
  try {
    await program().parseAsync(["node", "nrt", ...args]);
  } finally {
    spy.mockRestore();
  }
  return out;
}

afterEach(() => vi.restoreAllMocks());

describe("a bad config file", () => {
  it.each([
    ["a value out of range", "group_size: 0\n", /group_size = 0 is invalid: .*>=1/],
    ["a value of the wrong type", "lr: fast\n", /lr = "fast" is invalid: .*number/],
    ["a value not among the choices", "method: ppo\n", /method = "ppo" is invalid: .*"nrt-ws"\|"nrt-gm"/],
    ["an unknown key", "group_sise: 4\n", /unknown key "group_sise" \(known: .*group_size/],
  ])("%s: the error names the file, the key and the value or what was expected", (_, line, why) => {
    const path = file("bad.yaml", base + line);
    let err: unknown;
    try {
      resolveTrainConfig({ config: path });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NrtError);
    expect((err as Error).message).toContain(path);
    expect((err as Error).message).toMatch(why);
  });

  it("a JSON file that does not parse names the file", () => {
    const path = file("bad.json", '{"group_size": 4,}');
    expect(() => resolveTrainConfig({ config: path })).toThrow(/bad\.json: not valid JSON/);
  });

  it("nrt config --print fails the same way, as an NrtError", async () => {
    const path = file("bad2.yaml", `${base}top_p: 2\n`);
    await expect(run("config", "--print", "--config", path)).rejects.toThrow(/top_p = 2 is invalid/);
    await expect(run("config", "--print")).rejects.toThrow(/nrt config: --model is required/);
  });
});

describe("nrt train --help", () => {
  it("lists every field of trainFields with its doc and default", () => {
    const help = program()
      .commands.find((c) => c.name() === "train")!
      .helpInformation()
      .replace(/\s+/g, " "); // commander wraps long lines
    for (const [k, f] of Object.entries(trainFields)) {
      expect(help).toContain(`--${kebab(k)} <value>`);
      expect(help).toContain(f.doc.replace(/\s+/g, " "));
      if (f.default !== undefined) expect(help).toContain(`(default: ${JSON.stringify(f.default)})`);
    }
  });
});

describe("nrt config --print", () => {
  it("prints defaults ← file ← flags as YAML that reads back as the same configuration", async () => {
    const path = file("run.yaml", `${base}method: rlpr\ngroup_size: 16\ntemperature: 0.7\n`);
    const yaml = await run("config", "--print", "--config", path, "--group-size", "4", "--threads", "1");
    expect(yaml).toContain("method: rlpr\n");
    expect(yaml).toContain("group_size: 4\n"); // the flag wins over the file
    expect(yaml).toContain("temperature: 0.7\n");
    expect(yaml).toContain("format_coef: 0.3\n"); // a default
    expect(yaml).not.toContain("aggregation"); // unset: left out, so the output is a valid config file
    const again = resolveTrainConfig({ config: file("printed.yaml", yaml) });
    expect(again).toEqual(resolveTrainConfig({ config: path, groupSize: "4", threads: "1" }));
  });

  it("--json prints one JSON object with snake_case keys", async () => {
    const out = await run("config", "--json", "--model", "m", "--data", "d", "--out", "o", "--threads", "1");
    expect(out.trim().split("\n")).toHaveLength(1);
    const o = JSON.parse(out);
    expect(o).toMatchObject({ model: "m", data: "d", out: "o", method: "nrt-ws", group_size: 8, max_trace_tokens: 64 });
    expect(Object.keys(o).every((k) => k === k.toLowerCase())).toBe(true);
  });
});
