/**
 * Issue 19, settings: config-file values are type-checked without coercion (YAML `steps: [7]`, `seed: true`,
 * `group_size: "0x10"` are refused, not read as 7, 1, 16); flag values must spell a decimal number or
 * true/false; boolean flags work bare (`--skip-invalid`, `--progress`) and as `--no-…`.
 */
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { resolveTrainConfig } from "../../src/cli/commands/train.js";
import { NrtError } from "../../src/errors.js";
import { nrt, QA_LINES, STACK, setup, TINY_FLAGS } from "./_setup.js";

const s = setup("nrt-cfgtypes-");
afterAll(() => rmSync(s.dir, { recursive: true, force: true }));

let n = 0;
function file(text: string, ext = ".yaml"): string {
  const p = join(s.dir, `cfg-${n++}${ext}`);
  writeFileSync(p, text);
  return p;
}
const need = { model: "m", data: "d", out: "o" };

function refusal(o: Record<string, unknown>): string {
  try {
    resolveTrainConfig({ ...need, ...o });
  } catch (e) {
    expect(e).toBeInstanceOf(NrtError);
    return (e as Error).message;
  }
  throw new Error(`accepted: ${JSON.stringify(o)}`);
}

describe("config-file values are not coerced", () => {
  it.each([
    ["steps: [7]\n", "steps = [7] is invalid", /expected number, received array/],
    ["seed: true\n", "seed = true is invalid", /expected number, received boolean/],
    ['group_size: "0x10"\n', 'group_size = "0x10" is invalid', /expected number, received string/],
    ['lr: "3e-4"\n', 'lr = "3e-4" is invalid', /expected number/],
    ["skip_invalid: 1\n", "skip_invalid = 1 is invalid", /expected boolean/],
    ['progress: "false"\n', 'progress = "false" is invalid', /expected boolean/],
    ["method: [nrt-ws]\n", 'method = ["nrt-ws"] is invalid', /expected one of/],
  ])("%s is refused, naming the file and key", (text, what, why) => {
    const p = file(text);
    const msg = refusal({ config: p });
    expect(msg).toContain(`${p}: ${what}`);
    expect(msg).toMatch(why);
  });

  it("the same in a JSON file; typed values pass", () => {
    expect(refusal({ config: file('{"steps": "7"}', ".json") })).toMatch(/steps = "7" is invalid/);
    const cfg = resolveTrainConfig({ ...need, config: file("steps: 7\nlr: 3.0e-4\nskip_invalid: true\nseed: 0\n") });
    expect(cfg).toMatchObject({ steps: 7, lr: 3e-4, skipInvalid: true, seed: 0 });
  });
});

describe("flag values spell their type", () => {
  it("a decimal number; hex, blanks and words are refused naming the flag's key", () => {
    expect(refusal({ groupSize: "0x10" })).toMatch(/flags: group_size = "0x10" is invalid: expected a decimal number/);
    expect(refusal({ steps: " " })).toMatch(/flags: steps = " " is invalid/);
    expect(refusal({ seed: "true" })).toMatch(/flags: seed = "true" is invalid/);
    expect(resolveTrainConfig({ ...need, groupSize: "16", lr: "3e-4", steps: "+7" })).toMatchObject({
      groupSize: 16,
      lr: 3e-4,
      steps: 7,
    });
  });
});

describe("boolean flags are switches", () => {
  const bad = join(s.dir, "with-bad-line.jsonl");
  writeFileSync(bad, `${QA_LINES.join("\n")}\n{"question": "q"}\n`);
  const flags = TINY_FLAGS.filter((f, i) => f !== "--progress" && TINY_FLAGS[i - 1] !== "--progress");
  const train = (...extra: string[]) =>
    nrt([
      "train",
      "--model",
      s.model,
      "--data",
      bad,
      "--out",
      join(s.dir, `run-${n++}`),
      "--steps",
      "1",
      ...flags,
      ...extra,
    ]);

  it("--skip-invalid given alone, as a CLI user writes it", () => {
    const r = train("--skip-invalid", "--no-progress");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(`warning: ${bad}: skipped 1 invalid record(s)`);
  });

  it("--no-skip-invalid turns off a config file's skip_invalid: true; --skip-invalid false too", () => {
    const cfg = file("skip_invalid: true\nprogress: false\n");
    for (const off of [["--no-skip-invalid"], ["--skip-invalid", "false"]]) {
      const r = train("--config", cfg, ...off);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(`${bad}:7: "answer" must be a string`);
      expect(r.stderr).not.toMatch(STACK);
    }
    expect(train("--config", cfg).status).toBe(0);
  });

  it("an unset switch leaves the config file's value; bare and --no- forms resolve as written", () => {
    const cfg = file("progress: false\n");
    expect(resolveTrainConfig({ ...need, config: cfg }).progress).toBe(false);
    expect(resolveTrainConfig({ ...need, config: cfg, progress: true }).progress).toBe(true); // bare --progress
    expect(resolveTrainConfig({ ...need, skipInvalid: false }).skipInvalid).toBe(false); // --no-skip-invalid
    expect(refusal({ skipInvalid: "maybe" })).toMatch(/skip_invalid = "maybe" is invalid/);
  });
});
