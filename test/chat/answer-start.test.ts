// SPEC §2: adding ⟨answer_start⟩ to a model and tokenizer that lack it (rows copied from ⟨eos⟩).
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { resolveFields } from "../../src/config/schema.js";
import { type TrainConfig, trainFields } from "../../src/config/train-config.js";
import { evaluate } from "../../src/eval/evaluate.js";
import { type LoadedModel, loadModel, withAnswerStart } from "../../src/io/load.js";
import { saveModelDir } from "../../src/io/model-dir.js";
import { llamaConfig } from "../../src/model/config.js";
import { Model } from "../../src/model/model.js";
import { Tokenizer } from "../../src/tokenizer/tokenizer.js";
import { train } from "../../src/train/trainer.js";
import { Rng } from "../../src/util/rng.js";
import { llama2Json } from "../tokenizer/hand-built.js";

const C = 16;
const EMBED = "model.embed_tokens.weight";
const HEAD = "lm_head.weight";

/** A random model over the hand-built Llama-2 tokenizer (⟨eos⟩ = 2, no ⟨answer_start⟩), vocab_size = V + pad. */
function loaded(tied: boolean, pad = 0): LoadedModel {
  const tokenizer = Tokenizer.fromJson(llama2Json(), "tokenizer.json", { bosId: 1, eosId: 2 });
  const cfg = llamaConfig({
    vocabSize: tokenizer.vocabSize + pad,
    hiddenSize: C,
    intermediateSize: 32,
    numLayers: 1,
    numHeads: 2,
    numKvHeads: 1,
    tied,
    bosTokenId: 1,
    eosTokenId: 2,
  });
  const model = new Model(cfg);
  const rng = new Rng(7);
  for (let i = 0; i < model.params.length; i++) model.params[i] = 0.3 * rng.normal();
  return { dir: "m", model, tokenizer, tokenizerJson: JSON.stringify(llama2Json()), chatTemplate: null };
}

/** logits (N, V) of one sequence */
function logits(model: Model, tokens: number[]): Float32Array {
  model.runner.forward(Int32Array.from(tokens), Int32Array.from([tokens.length]));
  return model.runner.logits();
}

const row = (w: Float32Array, i: number) => Array.from(w.subarray(i * C, (i + 1) * C));

describe("withAnswerStart", () => {
  describe.each([
    ["untied", false],
    ["tied", true],
  ])("%s embeddings", (_, tied) => {
    it("grows vocab, embedding and lm_head by one row copied from ⟨eos⟩; nothing else changes", () => {
      const before = loaded(tied);
      const V = before.model.config.vocabSize;
      const old = Float32Array.from(before.model.params);
      const seq = [1, 40, 41, 2, 60, 7];
      const oldLogits = logits(before.model, seq);
      const { loaded: after, added } = withAnswerStart(before);
      expect(added).toBe(true);
      const m = after.model;
      expect(m.config.vocabSize).toBe(V + 1);
      expect(m.config.answerStartTokenId).toBe(V);
      expect(after.tokenizer.answerStartId).toBe(V);
      expect(after.tokenizer.vocabSize).toBe(V + 1);
      expect(after.tokenizer.specialIds.has(V)).toBe(true);
      expect(Tokenizer.fromJson(after.tokenizerJson).answerStartId).toBe(V);
      expect(m.has(HEAD)).toBe(!tied);
      for (const p of before.model.table) {
        const was = before.model.view(p.name, old);
        const now = m.view(p.name);
        if (p.name === EMBED || p.name === HEAD) {
          expect(p.shape).toEqual([V, C]);
          expect(now.length).toBe((V + 1) * C);
          expect(now.subarray(0, V * C)).toEqual(was);
          expect(row(now, V)).toEqual(row(was, 2));
        } else expect(now).toEqual(was);
      }
      expect(m.numParams).toBe(before.model.numParams + C * (tied ? 1 : 2));
      // the old tokens' logits, for a sequence without the new id, are the same numbers
      const newLogits = logits(m, seq);
      for (let t = 0; t < seq.length; t++) {
        expect(newLogits.subarray(t * (V + 1), t * (V + 1) + V)).toEqual(oldLogits.subarray(t * V, (t + 1) * V));
        // ⟨answer_start⟩'s logit is ⟨eos⟩'s (up to float rounding: BLAS may sum another column in another order)
        expect(newLogits[t * (V + 1) + V]).toBeCloseTo(oldLogits[t * V + 2], 5);
      }
    });

    it("is idempotent: a model that has it is returned as is", () => {
      const once = withAnswerStart(loaded(tied)).loaded;
      const twice = withAnswerStart(once);
      expect(twice.added).toBe(false);
      expect(twice.loaded).toBe(once);
    });
  });

  it("a vocabulary padded past the tokenizer: the first unused row is taken, shapes unchanged", () => {
    const before = loaded(false, 5);
    const n = before.tokenizer.vocabSize;
    const V = before.model.config.vocabSize;
    const old = Float32Array.from(before.model.params);
    const { loaded: after, added } = withAnswerStart(before);
    expect(added).toBe(true);
    expect(after.model.config.vocabSize).toBe(V);
    expect(after.model.config.answerStartTokenId).toBe(n);
    expect(after.tokenizer.answerStartId).toBe(n);
    for (const p of after.model.table) {
      const now = after.model.view(p.name);
      const was = after.model.view(p.name, old);
      if (p.name === EMBED || p.name === HEAD) {
        expect(row(now, n)).toEqual(row(was, 2));
        for (const i of [0, n - 1, n + 1, V - 1]) expect(row(now, i)).toEqual(row(was, i));
      } else expect(now).toEqual(was);
    }
  });

  it("tokenizer_config.json's added_tokens_decoder gets the new token too", () => {
    const tc = { added_tokens_decoder: { "2": { content: "</s>", special: true } }, chat_template: "x" };
    const l = { ...loaded(false), tokenizerFiles: { "tokenizer_config.json": JSON.stringify(tc) } };
    const V = l.tokenizer.vocabSize;
    const after = withAnswerStart(l).loaded;
    const out = JSON.parse(after.tokenizerFiles?.["tokenizer_config.json"] ?? "{}");
    expect(out.chat_template).toBe("x");
    expect(out.added_tokens_decoder["2"]).toEqual(tc.added_tokens_decoder["2"]);
    expect(out.added_tokens_decoder[String(V)]).toMatchObject({ content: "<answer_start>", special: true });
  });

  it("a tokenizer that has it: only the config's missing answer_start_token_id is filled in", () => {
    const l = withAnswerStart(loaded(true)).loaded;
    const id = l.tokenizer.answerStartId!;
    const noId = { ...l, model: new Model({ ...l.model.config, answerStartTokenId: null }, l.model.params) };
    const r = withAnswerStart(noId);
    expect(r.added).toBe(false);
    expect(r.loaded.model.config.answerStartTokenId).toBe(id);
    expect(r.loaded.model.params).toBe(l.model.params);
    const wrong = { ...l, model: new Model({ ...l.model.config, answerStartTokenId: 5 }, l.model.params) };
    expect(() => withAnswerStart(wrong)).toThrow(/answer_start_token_id is 5 but the tokenizer has <answer_start> at/);
  });
});

describe("nrt train on a chat model without ⟨answer_start⟩", () => {
  it("adds it, renders prompts with the chat template, and writes it into checkpoints and final/", () => {
    const dir = mkdtempSync(join(tmpdir(), "nrt-as-"));
    const src = loaded(false);
    const modelDir = join(dir, "model");
    const template = "{% for m in messages %}{{ bos_token + '[INST] ' + m['content'] + ' [/INST]' }}{% endfor %}";
    saveModelDir(modelDir, src.model, {
      "tokenizer.json": src.tokenizerJson,
      "tokenizer_config.json": JSON.stringify({ chat_template: template, bos_token: "<s>", eos_token: "</s>" }),
    });
    const data = join(dir, "qa.jsonl");
    writeFileSync(
      data,
      ["the a", "he a", "a the"].map((q) => JSON.stringify({ question: q, answer: "he" })).join("\n"),
    );
    const out = join(dir, "run");
    const cfg = resolveFields(
      trainFields,
      undefined,
      {
        model: modelDir,
        data,
        out,
        steps: 1,
        groupSize: 2,
        promptsPerStep: 2,
        maxTraceTokens: 4,
        threads: 1,
        progress: false,
      },
      "test",
    ) as TrainConfig;
    // the trainer renders prompts with the model's template: a template that refuses them stops it at the record
    const refusing = join(dir, "refusing");
    saveModelDir(refusing, src.model, {
      "tokenizer.json": src.tokenizerJson,
      "tokenizer_config.json": JSON.stringify({ chat_template: "{{ raise_exception('no system turn') }}" }),
    });
    expect(() => train({ ...cfg, model: refusing, out: join(dir, "r2") })).toThrow(
      /qa\.jsonl:1: chat template: .*no system turn/,
    );
    train(cfg);
    const V = src.model.config.vocabSize;
    const ckpt = readdirSync(join(out, "checkpoints")).find((d) => d.startsWith("step-"))!;
    for (const d of [join(out, "final"), join(out, "checkpoints", ckpt)]) {
      const config = JSON.parse(readFileSync(join(d, "config.json"), "utf8"));
      expect(config.vocab_size).toBe(V + 1);
      expect(config.answer_start_token_id).toBe(V);
      const l = loadModel(d);
      expect(l.tokenizer.answerStartId).toBe(V);
      expect(l.model.config.vocabSize).toBe(V + 1);
    }
    const sample = JSON.parse(readFileSync(join(out, "samples.jsonl"), "utf8").split("\n")[0]);
    expect(sample.question).toBeTypeOf("string");
  });
});

describe("nrt eval on a model without ⟨answer_start⟩ (SPEC §7: a base measured before training)", () => {
  it("adds it in memory as training would, says so, and scores plain QA by exact match and answer log-probability", () => {
    const src = loaded(false);
    const { loaded: withAs } = withAnswerStart(src);
    const records = ["the a", "he a"].map((q, i) => ({ question: q, answer: "he", line: i + 1 }));
    const r = evaluate(src, records, { maxTraceTokens: 3 });
    expect(r.answer_start_added).toBe(true);
    expect(r.n).toBe(2);
    expect(r.by_k).toHaveProperty("?"); // no world checker: exact match only
    for (const q of r.questions) expect(q.free.correct).toBe(q.free.eos && q.free.prediction === "he");
    // answer_logprob_direct: mean over questions of (1/T) Σ log π(y*_i | prompt ⊕ ⟨answer_start⟩), by hand
    const as = withAs.tokenizer.answerStartId!;
    const y = [...withAs.tokenizer.encode("he"), 2];
    const direct = records.map((rec) => {
      const prompt = [1, ...withAs.tokenizer.encode(rec.question)];
      const seq = [...prompt, as, ...y];
      const lg = logits(withAs.model, seq);
      const V = withAs.model.config.vocabSize;
      let sum = 0;
      for (let i = 0; i < y.length; i++) {
        const at = prompt.length + i; // the logits row that predicts y_i
        const rowL = Array.from(lg.subarray(at * V, (at + 1) * V));
        const m = Math.max(...rowL);
        const lse = m + Math.log(rowL.reduce((a, x) => a + Math.exp(x - m), 0));
        sum += rowL[y[i]] - lse;
      }
      return sum / y.length;
    });
    expect(r.answer_logprob_direct).toBeCloseTo((direct[0] + direct[1]) / 2, 4);
    expect(r.answer_logprob).toBeLessThanOrEqual(0);
    // a model that has the token is evaluated as it is
    expect(evaluate(withAs, records, { maxTraceTokens: 3 }).answer_start_added).toBe(false);
  });
});
