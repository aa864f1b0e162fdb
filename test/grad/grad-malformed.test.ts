// `nrt grad` refuses malformed SPEC §6 batches: a non-zero exit and one error line naming the field at fault.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Batch, ensureBuilt, makeBatch, runNrtGradFailing, writeModel } from "./_harness.js";

let dir = "";
let V = 0;
const good = (): Batch => makeBatch({ aggregation: "gm" }, 2, 3, V, 7);

beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), "nrt-grad-malformed-"));
  V = writeModel(join(dir, "model"), { numLayers: 1 }, 3).vocabSize;
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function run(batch: unknown, name: string): { status: number | null; stderr: string; out: string } {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(batch));
  const out = join(dir, `out-${name}`);
  return { ...runNrtGradFailing(join(dir, "model"), file, out), out };
}

const CASES: { name: string; field: RegExp; edit: (b: Batch) => unknown }[] = [
  {
    name: "missing answer_start_id",
    field: /answer_start_id/,
    edit: ({ answer_start_id: _, ...rest }) => rest,
  },
  {
    name: "answer_start_id out of range",
    field: /answer_start_id/,
    edit: (b) => ({ ...b, answer_start_id: V }),
  },
  {
    name: "trace token id out of range",
    field: /groups\[1\]\.traces\[0\]\.tokens\[1\]/,
    edit: (b) => {
      b.groups[1].traces[0].tokens = [4, V, 5];
      return b;
    },
  },
  {
    name: "negative prompt token id",
    field: /groups\[0\]\.prompt\[1\]/,
    edit: (b) => {
      b.groups[0].prompt[1] = -1;
      return b;
    },
  },
  {
    name: "fractional answer token id",
    field: /groups\[0\]\.answer\[0\]/,
    edit: (b) => {
      b.groups[0].answer[0] = 4.5;
      return b;
    },
  },
  {
    name: "non-boolean emitted",
    field: /groups\[0\]\.traces\[2\]\.emitted/,
    edit: (b) => {
      (b.groups[0].traces[2] as { emitted: unknown }).emitted = "yes";
      return b;
    },
  },
  {
    name: "unknown aggregation",
    field: /aggregation/,
    edit: (b) => ({ ...b, config: { aggregation: "median" } }),
  },
  {
    name: "unknown advantage",
    field: /advantage/,
    edit: (b) => ({ ...b, config: { advantage: "grpo" } }),
  },
  {
    name: "misspelt config key",
    field: /token_weigth|tokenWeigth/,
    edit: (b) => ({ ...b, config: { token_weigth: "fixed" } }),
  },
  {
    name: "negative format_coef",
    field: /format_?[cC]oef/,
    edit: (b) => ({ ...b, config: { format_coef: -1 } }),
  },
];

describe("nrt grad on malformed batches", () => {
  it("accepts the unmodified batch (so each failure below is the edit's)", () => {
    const r = run(good(), "good");
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(join(r.out, "grads.safetensors"))).toBe(true);
  });

  for (const c of CASES) {
    it(`${c.name}: exits non-zero, naming the field`, () => {
      const r = run(c.edit(good()), c.name.replace(/\W+/g, "-"));
      expect(r.status, `exit status; stderr: ${r.stderr}`).not.toBe(0);
      expect(r.stderr).toMatch(/^nrt: error: /); // a one-line NrtError, not a stack trace
      expect(r.stderr).toMatch(c.field);
      expect(existsSync(join(r.out, "grads.safetensors")), "no output for a refused batch").toBe(false);
    });
  }
});
