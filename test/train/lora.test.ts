// LoRA runs (issue 18): a frozen base, a PEFT adapter in every checkpoint and in final/, resume and determinism as
// for full runs, `nrt merge` giving the in-memory merged model, and the adapter directory accepted as a model.
//
// The adapter files follow PEFT (huggingface/peft): adapter_config.json's keys are LoraConfig's fields
// (src/peft/tuners/lora/config.py, with peft_type/task_type/base_model_name_or_path/revision/inference_mode from
// PeftConfig in src/peft/config.py); the tensors are named as get_peft_model_state_dict saves them
// (src/peft/utils/save_and_load.py: the adapter name ".default" removed, so
// base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight), lora_A (r, in_features) and lora_B
// (out_features, r) as nn.Linear(in, r) and nn.Linear(r, out) in LoraLayer.update_layer (src/peft/tuners/lora/layer.py),
// where reset_lora_parameters initialises A with kaiming_uniform_(a=sqrt(5)) and B with zeros, and
// scaling = lora_alpha / r.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { loadModel } from "../../src/io/load.js";
import { loadModelDir } from "../../src/io/model-dir.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import { gradBatch, parseGradBatch } from "../../src/train/grad.js";
import { train, trainAsync } from "../../src/train/trainer.js";
import { FAMILY_FIXTURES, writeFamilyDir } from "../helpers/family-models.js";
import { QA_LINES, runMetrics, setup, tinyConfig, withoutTiming } from "../helpers/tiny-run.js";

const NRT = join(import.meta.dirname, "../../bin/nrt.js");

describe("nrt train --lora-rank", () => {
  const s = setup("nrt-lora-");
  const base = loadModelDir(s.model).model;
  const out = join(s.dir, "run");
  train(tinyConfig({ model: s.model, data: s.data, out, steps: 6, checkpointEvery: 3, loraRank: 4, loraAlpha: 16 }));

  test("final/ and every checkpoint hold a PEFT adapter (config keys, tensor names and shapes), not a model", () => {
    for (const dir of [join(out, "final"), join(out, "checkpoints", "step-000003")]) {
      const files = readdirSync(dir);
      expect(files).toContain("adapter_config.json");
      expect(files).toContain("adapter_model.safetensors");
      expect(files).toContain("tokenizer.json");
      expect(files).not.toContain("config.json");
      expect(files).not.toContain("model.safetensors");
      const cfg = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
      expect(cfg).toMatchObject({
        peft_type: "LORA",
        task_type: "CAUSAL_LM",
        r: 4,
        lora_alpha: 16,
        lora_dropout: 0,
        bias: "none",
        target_modules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        base_model_name_or_path: s.model,
      });
      const { tensors } = readSafetensors(join(dir, "adapter_model.safetensors"));
      const c = base.config;
      expect(tensors.size).toBe(2 * 7 * c.numLayers);
      const q = c.numHeads * c.headDim;
      const kv = c.numKvHeads * c.headDim;
      for (let l = 0; l < c.numLayers; l++) {
        const p = `base_model.model.model.layers.${l}.`;
        expect(tensors.get(`${p}self_attn.q_proj.lora_A.weight`)?.shape).toEqual([4, c.hiddenSize]);
        expect(tensors.get(`${p}self_attn.q_proj.lora_B.weight`)?.shape).toEqual([q, 4]);
        expect(tensors.get(`${p}self_attn.k_proj.lora_B.weight`)?.shape).toEqual([kv, 4]);
        expect(tensors.get(`${p}self_attn.o_proj.lora_A.weight`)?.shape).toEqual([4, q]);
        expect(tensors.get(`${p}mlp.down_proj.lora_A.weight`)?.shape).toEqual([4, c.intermediateSize]);
        expect(tensors.get(`${p}mlp.gate_proj.lora_B.weight`)?.shape).toEqual([c.intermediateSize, 4]);
      }
      // trained: B is no longer PEFT's zero start
      const b = tensors.get("base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight")!.data;
      expect(b.some((x) => x !== 0)).toBe(true);
    }
  });

  test("the base is frozen: loading final/ gives the base's weights untouched, with the adapter over them", () => {
    const loaded = loadModel(out);
    expect(loaded.model.adapter).not.toBeNull();
    expect(Array.from(loaded.model.params)).toEqual(Array.from(base.params));
    expect(loaded.model.adapter!.base).toBe(s.model);
  });

  test("the same seed gives the same run; a resumed run gives the uninterrupted run's metrics", () => {
    const b = join(s.dir, "run-b");
    const c = join(s.dir, "run-c");
    const lora = { loraRank: 4, loraAlpha: 16 };
    train(tinyConfig({ model: s.model, data: s.data, out: b, steps: 6, checkpointEvery: 3, ...lora }));
    expect(runMetrics(b).map(withoutTiming)).toEqual(runMetrics(out).map(withoutTiming));
    expect(() =>
      train(tinyConfig({ model: s.model, data: s.data, out: c, steps: 6, checkpointEvery: 3, ...lora }), {
        onStep: (_m, step) => {
          if (step === 5) throw new Error("simulated crash");
        },
      }),
    ).toThrow("simulated crash");
    train(tinyConfig({ model: s.model, data: s.data, out: c, steps: 6, checkpointEvery: 3, ...lora }), {}, true);
    expect(runMetrics(c).map(withoutTiming)).toEqual(runMetrics(out).map(withoutTiming));
    const fa = readSafetensors(join(out, "final", "adapter_model.safetensors")).tensors;
    const fc = readSafetensors(join(c, "final", "adapter_model.safetensors")).tensors;
    for (const [name, t] of fa) expect(Array.from(fc.get(name)!.data)).toEqual(Array.from(t.data));
  });

  test("nrt merge writes a whole model whose logits are the adapted model's", () => {
    const merged = join(s.dir, "merged");
    const line = execFileSync(process.execPath, [NRT, "merge", out, "-o", merged, "--json"], { encoding: "utf8" });
    expect(JSON.parse(line)).toMatchObject({ rank: 4, alpha: 16, base: s.model });
    expect(existsSync(join(merged, "config.json"))).toBe(true);
    expect(existsSync(join(merged, "tokenizer.json"))).toBe(true);
    const adapted = loadModel(out).model;
    const whole = loadModel(merged).model;
    expect(whole.adapter).toBeNull();
    const tokens = Int32Array.of(1, 5, 9, 3, 7, 2, 11);
    adapted.runner.forward(tokens, Int32Array.of(7));
    const want = adapted.runner.logits();
    whole.runner.forward(tokens, Int32Array.of(7));
    const got = whole.runner.logits();
    let d = 0;
    let scale = 0;
    for (let i = 0; i < want.length; i++) {
      d = Math.max(d, Math.abs(got[i] - want[i]));
      scale = Math.max(scale, Math.abs(want[i]));
    }
    expect(d).toBeLessThan(1e-5 * scale);
    // the same model as the in-memory merge, bit for bit
    expect(Array.from(whole.params)).toEqual(Array.from(adapted.merged().params));
    // and merging again is refused without --force; a whole model has nothing to merge
    const again = () => execFileSync(process.execPath, [NRT, "merge", out, "-o", merged], { stdio: "pipe" });
    expect(again).toThrow(/--force/);
    const whole2 = () =>
      execFileSync(process.execPath, [NRT, "merge", merged, "-o", join(s.dir, "m2")], { stdio: "pipe" });
    expect(whole2).toThrow(/not a LoRA adapter/);
    // GGUF export merges first: the same file as the merged model's
    const gguf = (from: string, to: string) =>
      execFileSync(process.execPath, [NRT, "export", "--format", "gguf", from, "-o", to, "--name", "m"], {
        stdio: "pipe",
      });
    gguf(out, join(s.dir, "a.gguf"));
    gguf(merged, join(s.dir, "b.gguf"));
    expect(readFileSync(join(s.dir, "a.gguf")).equals(readFileSync(join(s.dir, "b.gguf")))).toBe(true);
  });

  test("nrt grad on an adapter directory writes the adapter's gradients under PEFT's names", () => {
    const dir = join(s.dir, "grad");
    const batch = join(s.dir, "batch.json");
    const b = {
      answer_start_id: 3,
      groups: [
        {
          prompt: [1, 10, 11, 12],
          answer: [13, 14, 2],
          traces: [
            { tokens: [20, 21], emitted: true },
            { tokens: [22], emitted: true },
          ],
        },
      ],
    };
    writeFileSync(batch, JSON.stringify(b));
    execFileSync(process.execPath, [NRT, "grad", join(out, "final"), "--batch", batch, "-o", dir], { stdio: "pipe" });
    const { tensors } = readSafetensors(join(dir, "grads.safetensors"));
    const model = loadModel(out).model;
    const a = model.adapter!;
    expect([...tensors.keys()].sort()).toEqual(a.table.map((p) => p.name).sort());
    const grads = model.zeros();
    gradBatch(model, parseGradBatch(b, model.config.vocabSize), grads);
    for (const p of a.table) expect(Array.from(tensors.get(p.name)!.data)).toEqual(Array.from(a.view(p.name, grads)));
    expect(grads.some((x) => x !== 0)).toBe(true);
  });

  test("an adapter directory is a model for the other commands (sample)", () => {
    const r = execFileSync(
      process.execPath,
      [NRT, "sample", join(out, "final"), "--prompt", "a1,b+2;b", "--max-new-tokens", "4", "--json"],
      { encoding: "utf8" },
    );
    expect(r.length).toBeGreaterThan(0);
  });

  test("a bad --lora-targets and a non-native engine are refused in one line", async () => {
    expect(() =>
      train(
        tinyConfig({
          model: s.model,
          data: s.data,
          out: join(s.dir, "x"),
          steps: 1,
          loraRank: 2,
          loraTargets: "q_proj,wq",
        }),
      ),
    ).toThrow(/--lora-targets: unknown projection "wq"/);
    await expect(
      trainAsync(
        tinyConfig({ model: s.model, data: s.data, out: join(s.dir, "y"), steps: 1, loraRank: 2, engine: "tinker" }),
      ),
    ).rejects.toThrow(/--lora-rank: LoRA trains in process/);
    expect(existsSync(join(s.dir, "x"))).toBe(false);
  });
});

describe("a LoRA run on a base without ⟨answer_start⟩ (the Llama-3 family fixture: the vocabulary grows)", () => {
  const dir = mkdtempSync(join(tmpdir(), "nrt-lora-as-"));
  const model = join(dir, "model");
  const llama = FAMILY_FIXTURES.find((f) => f.name === "llama")!;
  writeFamilyDir(model, llama, "bfloat16");
  const data = join(dir, "qa.jsonl");
  writeFileSync(data, `${QA_LINES.join("\n")}\n`);
  const cfg = (out: string) =>
    tinyConfig({ model, data, out, steps: 4, checkpointEvery: 2, loraRank: 2, loraTargets: "q_proj,down_proj" });

  test("final/ loads as the model it was trained on; a resumed run is the same run; merge matches", () => {
    const a = join(dir, "a");
    const b = join(dir, "b");
    train(cfg(a));
    expect(() =>
      train(cfg(b), {
        onStep: (_m, step) => {
          if (step === 3) throw new Error("simulated crash");
        },
      }),
    ).toThrow("simulated crash");
    train(cfg(b), {}, true);
    expect(runMetrics(b).map(withoutTiming)).toEqual(runMetrics(a).map(withoutTiming));
    const adapted = loadModel(join(a, "final")).model;
    expect(adapted.config.vocabSize).toBe(llama.over.vocabSize! + 1);
    expect(adapted.config.answerStartTokenId).toBe(llama.over.vocabSize);
    const merged = join(dir, "merged");
    execFileSync(process.execPath, [NRT, "merge", a, "-o", merged, "--save-dtype", "float32"], { stdio: "pipe" });
    const whole = loadModel(merged).model;
    expect(whole.config.vocabSize).toBe(adapted.config.vocabSize);
    expect(Array.from(whole.params)).toEqual(Array.from(adapted.merged().params));
  });
});
