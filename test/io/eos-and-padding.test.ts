// Checkpoints as people have them (SPEC §6): a vocab_size padded past the tokenizer (those ids are never sampled),
// eos_token_id lists and generation_config.json (every id ends generation), and a chat model's answers ending in
// its end-of-turn token.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { ChatTemplate } from "../../src/chat/template.js";
import { answerEndId, recordExamples } from "../../src/data/format.js";
import { loadModel } from "../../src/io/load.js";
import { saveModelDir } from "../../src/io/model-dir.js";
import { llamaConfig } from "../../src/model/config.js";
import { generate } from "../../src/model/generate.js";
import { Model } from "../../src/model/model.js";
import { setThreads } from "../../src/model/native.js";
import { reply } from "../../src/rollout/reply.js";
import { Tokenizer } from "../../src/tokenizer/tokenizer.js";
import { ensureBuilt } from "../helpers/ensure-built.js";
import { llama3Json } from "../tokenizer/hand-built.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const PAD = 24;
const C = 16;

/** A written-out Llama-3-style template (turns framed by header tokens, each closed by <|eot_id|>). */
const TEMPLATE =
  "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}";

const tokJson = JSON.stringify(llama3Json());
const tok0 = Tokenizer.fromJson(tokJson, "tokenizer.json");
const V = tok0.vocabSize; // ids 0..V-1: the byte vocabulary, then <|begin_of_text|> <|end_of_text|> <|eot_id|>
const [BOS, EOS, EOT] = [V - 3, V - 2, V - 1];

/** A model whose lm_head scores only the `hot` ids (all others 0): sampling is uniform over the rest unless masked. */
function model(vocab: number, hot: (id: number) => boolean, eos: number[]): Model {
  const m = Model.init(
    llamaConfig({
      vocabSize: vocab,
      hiddenSize: C,
      intermediateSize: 32,
      numLayers: 1,
      numHeads: 2,
      numKvHeads: 1,
      bosTokenId: BOS,
      eosTokenId: eos[0],
      extraEosTokenIds: eos.slice(1),
      maxPositionEmbeddings: 1100,
    }),
    1,
    0.3,
  );
  // every embedding has a large constant in dimension 0, which dominates the final normed state (h_0 ≈ 4), and
  // only the hot rows of lm_head read it: their logits are ≈ 160, every other one 0
  const embed = m.view("model.embed_tokens.weight");
  for (let id = 0; id < vocab; id++) embed[id * C] = 100;
  m.view("model.norm.weight").fill(1);
  const head = m.view("lm_head.weight");
  head.fill(0);
  for (let id = 0; id < vocab; id++) if (hot(id)) head[id * C] = 40;
  return m;
}

describe("a vocabulary padded past the tokenizer", () => {
  let dir: string;
  beforeAll(() => {
    setThreads(1);
    dir = join(mkdtempSync(join(tmpdir(), "nrt-pad-")), "m");
    // the padding rows V..V+PAD-1 have by far the largest logits: unmasked, they would be nearly every sample
    saveModelDir(
      dir,
      model(V + PAD, (id) => id >= V, [EOS]),
      { "tokenizer.json": tokJson },
    );
  });

  it("never samples a padding id (1,000 tokens at temperature 1), and would without the mask", () => {
    const loaded = loadModel(dir);
    expect(loaded.model.config.vocabSize).toBe(V + PAD);
    expect(loaded.model.sampleVocab).toBe(V);
    const prompt = [BOS, ...loaded.tokenizer.encode("hello")];
    const opts = { maxNew: 100, temperature: 1, seed: 3, stop: [] };
    const streams = generate(
      loaded.model,
      Array.from({ length: 10 }, () => prompt),
      opts,
    );
    const ids = streams.flatMap((s) => s.tokens);
    expect(ids).toHaveLength(1000);
    expect(ids.every((t) => t >= 0 && t < V)).toBe(true);
    loaded.model.sampleVocab = V + PAD; // the mask off: the padding rows win
    const unmasked = generate(loaded.model, [prompt], opts)[0].tokens;
    expect(unmasked.filter((t) => t >= V).length).toBeGreaterThan(50);
  });

  it("nrt sample runs 1,000 tokens on it without a crash", () => {
    ensureBuilt("src/cli/commands/sample.ts");
    const r = spawnSync(
      process.execPath,
      [
        join(ROOT, "bin/nrt.js"),
        "sample",
        dir,
        "--prompt",
        "hi",
        "--max-new-tokens",
        "1000",
        "--temperature",
        "1",
        "--json",
        "--threads",
        "1",
      ],
      { encoding: "utf8" },
    );
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.samples[0].tokens.every((t: number) => t < V)).toBe(true);
  });
});

describe("eos lists, generation_config.json and a chat model's end of turn", () => {
  it("reads every eos id, stops at each, ends a chat answer in <|eot_id|>, and writes the list back", () => {
    const dir = join(mkdtempSync(join(tmpdir(), "nrt-eos-")), "m");
    const gen = JSON.stringify({ bos_token_id: BOS, eos_token_id: [EOS, EOT], temperature: 0.6 });
    // <|eot_id|> is by far the likeliest token: an answer stops at once on it
    saveModelDir(
      dir,
      model(V, (id) => id === EOT, [EOS, EOT]),
      {
        "tokenizer.json": tokJson,
        "tokenizer_config.json": JSON.stringify({
          chat_template: TEMPLATE,
          bos_token: "<|begin_of_text|>",
          eos_token: "<|end_of_text|>",
        }),
        "generation_config.json": gen,
      },
    );
    expect(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")).eos_token_id).toEqual([EOS, EOT]);
    const loaded = loadModel(dir);
    expect(loaded.model.config.eosTokenId).toBe(EOS);
    expect(loaded.model.config.extraEosTokenIds).toEqual([EOT]);
    expect(loaded.stopIds).toEqual([EOS, EOT]);
    expect(loaded.tokenizerFiles?.["generation_config.json"]).toBe(gen);
    // the chat template's end of turn ends y*, the plain form ends it with ⟨eos⟩
    expect(answerEndId(loaded.tokenizer, loaded.chatTemplate)).toBe(EOT);
    expect(answerEndId(loaded.tokenizer, null)).toBe(EOS);
    const [ex] = recordExamples(
      loaded.tokenizer,
      loaded.chatTemplate,
      [{ question: "hi", answer: "yo", line: 1 }],
      1000,
      "d",
    );
    expect(ex.answer.at(-1)).toBe(EOT);
    expect(loaded.tokenizer.decode(ex.prompt)).toContain("<|start_header_id|>assistant<|end_header_id|>");
    const r = reply(loaded, "hi", { temperature: 0, topP: 1, topK: 0, maxNewTokens: 20, maxTraceTokens: 0, seed: 0 });
    expect(r.finished).toBe(true);
    expect(r.answerTokens).toEqual([]);
    // a model without that eos list runs on past <|eot_id|>
    const plain = model(V, (id) => id === EOT, [EOS]);
    const s = generate(plain, [ex.prompt], { maxNew: 5, temperature: 0, seed: 0, stop: [EOS] })[0];
    expect(s.tokens).toEqual([EOT, EOT, EOT, EOT, EOT]);
    // a template that writes no special token after the turn: ⟨eos⟩
    const bare = new ChatTemplate("{% for m in messages %}{{ m.content }}\n{% endfor %}", {}, "t");
    expect(answerEndId(loaded.tokenizer, bare)).toBe(EOS);
  });
});
