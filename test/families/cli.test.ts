// Every family of SPEC §6 through the CLI, from a float32 and a bfloat16 checkpoint built around a real tokenizer
// (test/helpers/family-models.ts): `nrt sample` at temperature 0 gives the greedy continuation of repeated full
// forward passes (the KV-cached path equals the forward), `nrt train` runs 2 steps and writes the family's
// config.json back, and `nrt eval` scores the trained model.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel } from "../../src/io/load.js";
import { setThreads } from "../../src/model/native.js";
import { argmax } from "../engine/random-model.js";
import { ensureBuilt } from "../helpers/ensure-built.js";
import { FAMILY_FIXTURES, writeFamilyDir } from "../helpers/family-models.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "nrt-families-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const QA = [
  { question: "What is the capital of France?", answer: "Paris" },
  { question: "How many legs does a spider have?", answer: "eight" },
  { question: "What colour is the sky?", answer: "blue" },
];
const PROMPT = "The quick brown fox";

function nrt(...args: string[]) {
  const r = spawnSync(process.execPath, [join(ROOT, "bin/nrt.js"), ...args], { cwd: ROOT, encoding: "utf8" });
  expect(r.status, `nrt ${args.join(" ")}\n${r.stderr}`).toBe(0);
  return r;
}

/** Greedy continuation by repeated full forward passes (no KV cache), stopping after ⟨eos⟩. */
function greedyByForward(dir: string, prompt: number[], maxNew: number): number[] {
  const { model, tokenizer } = loadModel(dir);
  const V = model.config.vocabSize;
  const seq = [...prompt];
  const out: number[] = [];
  for (let s = 0; s < maxNew; s++) {
    model.runner.forward(Int32Array.from(seq), Int32Array.of(seq.length));
    const t = argmax(model.runner.logits(), (seq.length - 1) * V, seq.length * V);
    out.push(t);
    seq.push(t);
    if (t === tokenizer.eosId) break;
  }
  return out;
}

beforeAll(() => {
  ensureBuilt("src/cli/commands/sample.ts", "src/cli/commands/train.ts", "src/cli/commands/eval.ts");
  setThreads(1);
  writeFileSync(join(tmp, "qa.jsonl"), `${QA.map((r) => JSON.stringify(r)).join("\n")}\n`);
});

for (const f of FAMILY_FIXTURES) {
  for (const dtype of ["float32", "bfloat16"] as const) {
    describe(`${f.name} (${dtype} checkpoint)`, () => {
      const dir = join(tmp, `${f.name}-${dtype}`);
      const run = join(tmp, `${f.name}-${dtype}-run`);
      beforeAll(() => {
        writeFamilyDir(dir, f, dtype);
      });

      it("nrt sample --temperature 0 continues as repeated full forward passes do", () => {
        const r = nrt("sample", dir, "--prompt", PROMPT, "--temperature", "0", "--max-new-tokens", "32", "--json");
        const got = JSON.parse(r.stdout).samples[0].tokens as number[];
        const { tokenizer } = loadModel(dir);
        const prompt = [...(tokenizer.bosId !== null ? [tokenizer.bosId] : []), ...tokenizer.encode(PROMPT)];
        expect(got).toEqual(greedyByForward(dir, prompt, 32));
        expect(got.length).toBeGreaterThan(0);
      });

      it("nrt train runs 2 steps and writes the family's config.json back", () => {
        nrt(
          "train",
          dir,
          "--data",
          join(tmp, "qa.jsonl"),
          "--out",
          run,
          "--steps",
          "2",
          "--group-size",
          "2",
          "--prompts-per-step",
          "2",
          "--max-trace-tokens",
          "6",
          "--threads",
          "1",
          "--lr",
          "1e-3",
        );
        const metrics = readFileSync(join(run, "metrics.jsonl"), "utf8").trim().split("\n");
        expect(metrics).toHaveLength(2);
        const written = JSON.parse(readFileSync(join(run, "final", "config.json"), "utf8"));
        const given = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
        for (const key of ["model_type", "architectures", "rope_scaling", "head_dim", "tie_word_embeddings"])
          expect(written[key], key).toEqual(given[key]);
        if (f.over.modelType === "qwen2") expect(written).toMatchObject({ use_sliding_window: false });
        const trained = loadModel(run).model;
        for (const p of trained.table) expect(p.name).toMatch(/^(model\.|lm_head\.weight$)/);
        if (f.over.modelType === "qwen2") expect(trained.has("model.layers.1.self_attn.v_proj.bias")).toBe(true);
        if (f.over.modelType === "qwen3") expect(trained.has("model.layers.1.self_attn.k_norm.weight")).toBe(true);
      });

      it("nrt eval scores the trained model", () => {
        const r = nrt(
          "eval",
          join(run, "final"),
          "--data",
          join(tmp, "qa.jsonl"),
          "--json",
          "--max-trace-tokens",
          "6",
          "--max-answer-tokens",
          "6",
          "--threads",
          "1",
        );
        const out = JSON.parse(r.stdout);
        expect(out.n).toBe(QA.length);
        expect(out.accuracy).toBeGreaterThanOrEqual(0);
      });
    });
  }
}
