// nrt export --format verl-nrt: the parquet files are read back with an independent reader (parquet-wasm, i.e.
// arrow-rs's parquet crate, decoded by apache-arrow: the writer is hyparquet-writer), the rows are compared with
// the source records, the text columns are tokenised with the exported model's tokenizer and must give nrt's own
// sequence layout (SPEC §2) with <|response_start|> as ⟨answer_start⟩, and overrides.txt must carry the settings.
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { tableFromIPC } from "apache-arrow";
import { readParquet } from "parquet-wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readChatTemplate } from "../../src/chat/template.js";
import { resolveFields } from "../../src/config/schema.js";
import { type TrainConfig, trainFields } from "../../src/config/train-config.js";
import { promptIds } from "../../src/data/format.js";
import { nrtSequence } from "../../src/data/pack.js";
import { exportVerlNrt, type VerlNrtResult } from "../../src/export/verl-nrt.js";
import type { VerlNrtRow } from "../../src/export/verl-nrt-rows.js";
import { loadModel } from "../../src/io/load.js";
import { loadModelDir, saveModelDir } from "../../src/io/model-dir.js";
import { llamaConfig } from "../../src/model/config.js";
import { Model } from "../../src/model/model.js";
import { CHAR_IDS, CHAR_VOCAB_SIZE, charTokenizerJson } from "../../src/tokenizer/char-tokenizer-json.js";
import { Tokenizer } from "../../src/tokenizer/tokenizer.js";
import { generate, toJsonl } from "../../src/world/chain.js";
import { ensureBuilt } from "../helpers/ensure-built.js";
import { QA_LINES } from "../helpers/tiny-run.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BASE = join(ROOT, "models", "chain2-base");
const tmp = mkdtempSync(join(tmpdir(), "nrt-verl-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The recipe's columns (recipe/nrt/data/scripts/tulu-3-sft-mixture.py) with index/line in extra_info. */
const COLUMNS = [
  "data_source",
  "prompt",
  "gen_prompt",
  "think_prefix",
  "response_prefix",
  "reference_content",
  "reward_model",
  "ability",
  "extra_info",
];
const TURNS = "List<Struct<{role:Utf8, content:Utf8}>>";

/**
 * Keys that exist in the recipe's configuration (recipe/nrt/config/nrt_trainer.yaml over verl's ppo_trainer.yaml,
 * flat in verl/trainer/config/_generated_ppo_trainer.yaml, of sharkwyf/native-reasoning-models): an override of
 * any other key would make Hydra fail.
 */
const RECIPE_KEYS = new Set(
  [
    "data.train_batch_size data.max_prompt_length data.max_think_length data.max_response_length data.seed",
    "actor_rollout_ref.rollout.n actor_rollout_ref.rollout.temperature actor_rollout_ref.rollout.top_p",
    "actor_rollout_ref.rollout.top_k actor_rollout_ref.actor.ppo_mini_batch_size actor_rollout_ref.actor.ppo_epochs",
    "actor_rollout_ref.actor.loss_agg_mode actor_rollout_ref.actor.use_nrt_loss actor_rollout_ref.actor.trace_loss_coef",
    "actor_rollout_ref.actor.response_prefix_loss_coef actor_rollout_ref.actor.token_loss_coef",
    "actor_rollout_ref.actor.clip_ratio_low actor_rollout_ref.actor.clip_ratio_high",
    "actor_rollout_ref.actor.cispo_clip_ratio_low actor_rollout_ref.actor.cispo_clip_ratio_high",
    "actor_rollout_ref.actor.use_kl_loss actor_rollout_ref.actor.kl_loss_coef actor_rollout_ref.actor.entropy_coeff",
    "actor_rollout_ref.actor.grad_clip actor_rollout_ref.actor.optim.lr actor_rollout_ref.actor.optim.lr_scheduler_type",
    "actor_rollout_ref.actor.optim.lr_warmup_steps actor_rollout_ref.actor.optim.min_lr_ratio",
    "actor_rollout_ref.actor.optim.weight_decay actor_rollout_ref.actor.optim.betas actor_rollout_ref.actor.optim.eps",
    "algorithm.adv_estimator algorithm.use_kl_in_reward algorithm.response_format algorithm.reward_agg_mode",
    "algorithm.center_reward_by algorithm.scale_reward_by algorithm.use_fixed_token_reward",
    "custom_reward_function.path custom_reward_function.name reward_model.reward_manager",
    "trainer.total_training_steps trainer.total_epochs trainer.save_freq trainer.max_actor_ckpt_to_keep",
    "trainer.val_before_train trainer.test_freq",
  ]
    .join(" ")
    .split(" "),
);

/** A parquet file read by parquet-wasm + apache-arrow: column names and types, and the rows as plain JSON. */
function readBack(path: string): { fields: Record<string, string>; rows: VerlNrtRow[] } {
  const table = tableFromIPC(readParquet(new Uint8Array(readFileSync(path))).intoIPCStream());
  const fields = Object.fromEntries(table.schema.fields.map((f) => [f.name, String(f.type)]));
  const json = JSON.stringify(table.toArray(), (_k, v) => (typeof v === "bigint" ? Number(v) : v));
  return { fields, rows: JSON.parse(json) };
}

/** overrides.txt as key → value (comment and blank lines skipped; a key given twice fails). */
function readOverrides(path: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line.startsWith("#") || line.trim() === "") continue;
    const eq = line.indexOf("=");
    expect(eq, line).toBeGreaterThan(0);
    const key = line.slice(0, eq);
    expect(m.has(key), `${key} twice`).toBe(false);
    m.set(key, line.slice(eq + 1));
  }
  return m;
}

const settings = (file: Record<string, unknown>): TrainConfig =>
  resolveFields(trainFields, file, {}, "test") as TrainConfig;

/** source records as the test reads them itself: {question, answer} or a chat record */
type Source = { question?: string; answer?: string; messages?: { role: string; content: string }[]; trace?: string };
const parseLines = (text: string): Source[] =>
  text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l));

describe("verl-nrt export of the shipped chain2 base", () => {
  const out = join(tmp, "chain2-verl");
  const data = join(tmp, "train.jsonl");
  const evalData = join(tmp, "eval.jsonl");
  const chat = {
    messages: [
      { role: "system", content: "a b c" },
      { role: "user", content: "a1,b+2,c*3;c" },
      { role: "assistant", content: "c=9" },
    ],
  };
  const CONFIG = {
    method: "nrt-gm",
    group_size: 4,
    prompts_per_step: 3,
    steps: 30,
    max_trace_tokens: 24,
    temperature: 0.9,
    top_p: 0.95,
    top_k: 5,
    lr: 0.002,
    schedule: "cosine",
    warmup_steps: 3,
    min_lr_ratio: 0.2,
    beta2: 0.99,
    clip: 0.5,
    format_coef: 0.2,
    checkpoint_every: 10,
    threads: 1,
  };
  let r: VerlNrtResult;
  let train: Source[];
  let evalRecs: Source[];
  const tok = Tokenizer.fromJson(readFileSync(join(BASE, "tokenizer.json"), "utf8"), "base", { bosId: 1, eosId: 2 });

  beforeAll(() => {
    const text = `${toJsonl(generate({ world: "chain2", split: "train", n: 10, k: [3, 4], seed: 5, withTrace: true }))}${JSON.stringify(chat)}\n`;
    writeFileSync(data, text);
    writeFileSync(evalData, toJsonl(generate({ world: "chain2", split: "eval", n: 4, k: [3, 6], seed: 6 })));
    train = parseLines(text);
    evalRecs = parseLines(readFileSync(evalData, "utf8"));
    r = exportVerlNrt(out, { model: BASE, data, evalData, settings: settings(CONFIG), settingsFrom: "run.yaml" });
  });

  it("writes train.parquet and test.parquet with the recipe's columns, read back by an independent reader", () => {
    expect(r).toMatchObject({ trainRows: 11, testRows: 4, responseStartId: 3, origin: "renamed", templateAdded: true });
    for (const [file, n] of [
      ["train.parquet", 11],
      ["test.parquet", 4],
    ] as const) {
      const { fields, rows } = readBack(join(out, file));
      expect(Object.keys(fields)).toEqual(COLUMNS);
      expect(fields.prompt).toBe(TURNS);
      expect(fields.gen_prompt).toBe(TURNS);
      for (const c of ["data_source", "think_prefix", "response_prefix", "reference_content", "ability"])
        expect(fields[c]).toBe("Utf8");
      expect(fields.reward_model).toBe("Struct<{style:Utf8, ground_truth:Utf8}>");
      expect(fields.extra_info).toBe(
        `Struct<{index:Int64, id:Utf8, source:Utf8, line:Int64, original_messages:${TURNS}}>`,
      );
      expect(rows).toHaveLength(n);
    }
  });

  it("has one row per source record, equal to it", () => {
    const check = (rows: VerlNrtRow[], recs: Source[], file: string) => {
      rows.forEach((row, i) => {
        const rec = recs[i];
        const turns = rec.messages ? rec.messages.slice(0, -1) : [{ role: "user", content: rec.question! }];
        const answer = rec.messages ? rec.messages.at(-1)!.content : rec.answer!;
        expect(row).toEqual({
          data_source: "nrt",
          prompt: turns,
          gen_prompt: turns,
          think_prefix: "",
          response_prefix: "<|response_start|>",
          reference_content: answer,
          reward_model: { style: "rule", ground_truth: answer },
          ability: "general",
          extra_info: {
            index: i,
            id: `${file}:${i + 1}`,
            source: file,
            line: i + 1,
            original_messages: [...turns, { role: "assistant", content: answer }],
          },
        });
      });
    };
    check(readBack(join(out, "train.parquet")).rows, train, "train.jsonl");
    check(readBack(join(out, "test.parquet")).rows, evalRecs, "eval.jsonl");
  });

  it("renames nrt's ⟨answer_start⟩ to <|response_start|>: one token, same id, every weight unchanged", () => {
    const exported = Tokenizer.fromJson(readFileSync(join(out, "model", "tokenizer.json"), "utf8"), "x", {
      bosId: 1,
      eosId: 2,
    });
    expect(exported.encode("<|response_start|>")).toEqual([3]);
    expect(exported.tokenToId("<answer_start>")).toBeNull();
    expect(exported.specialIds.has(3)).toBe(true);
    expect(exported.vocabSize).toBe(30);
    const cfg = JSON.parse(readFileSync(join(out, "model", "config.json"), "utf8"));
    expect(cfg).toMatchObject({ vocab_size: 30, answer_start_token_id: 3, eos_token_id: 2, bos_token_id: 1 });
    const tc = JSON.parse(readFileSync(join(out, "model", "tokenizer_config.json"), "utf8"));
    expect(tc).toMatchObject({
      tokenizer_class: "PreTrainedTokenizerFast",
      bos_token: "<s>",
      eos_token: "</s>",
      pad_token: "<pad>",
      additional_special_tokens: ["<|response_start|>"],
    });
    const a = loadModelDir(BASE).model;
    const b = loadModelDir(join(out, "model")).model;
    expect(b.params.length).toBe(a.params.length);
    const bytes = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    expect(bytes(b.params).equals(bytes(a.params))).toBe(true);
  });

  it("gives, tokenised by the exported tokenizer and template, nrt's own sequences; ids round-trip", () => {
    const exported = loadModel(join(out, "model")).tokenizer;
    const template = readChatTemplate(join(out, "model"));
    expect(template).not.toBeNull();
    const rows = readBack(join(out, "train.parquet")).rows;
    rows.forEach((row, i) => {
      const rec = train[i];
      const text = template!.render(row.prompt, { addGenerationPrompt: true });
      const prompt = exported.encode(text);
      // nrt's prompt for a model without a template: ⟨bos⟩ ⊕ the last user turn
      const question = rec.messages ? rec.messages[1].content : rec.question!;
      expect(prompt).toEqual(promptIds(tok, null, { question }));
      expect(prompt[0]).toBe(1);
      // the recipe's response: trace ⊕ response_prefix ⊕ reference_content ⊕ eos_token, as text
      const trace = rec.trace ?? "";
      const response = `${trace}${row.response_prefix}${row.reference_content}</s>`;
      const ids = exported.encode(text + response);
      const answerIds = [...tok.encode(row.reference_content), 2];
      expect(ids).toEqual(nrtSequence(promptIds(tok, null, { question }), tok.encode(trace), 3, answerIds));
      expect(ids.filter((t) => t === 3)).toHaveLength(1);
      for (const s of [text, response, row.reference_content, row.response_prefix]) {
        const e = exported.encode(s);
        expect(exported.decode(e)).toBe(s);
        expect(exported.encode(exported.decode(e))).toEqual(e);
      }
    });
  });

  it("writes overrides.txt with the config's settings under keys the recipe has", () => {
    const o = readOverrides(join(out, "overrides.txt"));
    for (const k of o.keys()) expect(RECIPE_KEYS.has(k), k).toBe(true);
    const all = [...train, ...evalRecs];
    const prompts = all.map((rec) => 1 + (rec.messages ? rec.messages[1].content : rec.question!).length);
    const answers = all.map((rec) => 1 + (rec.messages ? rec.messages[2].content : rec.answer!).length);
    expect(Object.fromEntries(o)).toMatchObject({
      "data.train_batch_size": "3",
      "data.max_prompt_length": String(Math.max(...prompts)),
      "data.max_think_length": "24",
      "data.max_response_length": String(24 + 1 + Math.max(...answers)),
      "actor_rollout_ref.rollout.n": "4",
      "actor_rollout_ref.rollout.temperature": "0.9",
      "actor_rollout_ref.rollout.top_p": "0.95",
      "actor_rollout_ref.rollout.top_k": "5",
      "actor_rollout_ref.actor.ppo_mini_batch_size": "3",
      "actor_rollout_ref.actor.ppo_epochs": "1",
      "actor_rollout_ref.actor.loss_agg_mode": "seq-mean-token-sum",
      "actor_rollout_ref.actor.use_nrt_loss": "true",
      "actor_rollout_ref.actor.trace_loss_coef": "1",
      "actor_rollout_ref.actor.response_prefix_loss_coef": "0.2",
      "actor_rollout_ref.actor.token_loss_coef": "1",
      "actor_rollout_ref.actor.cispo_clip_ratio_high": "1.28",
      "actor_rollout_ref.actor.grad_clip": "0.5",
      "actor_rollout_ref.actor.optim.lr": "0.002",
      "actor_rollout_ref.actor.optim.lr_scheduler_type": "cosine",
      "actor_rollout_ref.actor.optim.lr_warmup_steps": "3",
      "actor_rollout_ref.actor.optim.min_lr_ratio": "0.2",
      "actor_rollout_ref.actor.optim.betas": "[0.9,0.99]",
      "actor_rollout_ref.actor.optim.eps": "1e-8",
      "algorithm.adv_estimator": "grpo",
      "algorithm.reward_agg_mode": "geometric_mean",
      "algorithm.center_reward_by": "mean",
      "algorithm.scale_reward_by": "std",
      "algorithm.use_fixed_token_reward": "true",
      "trainer.total_training_steps": "30",
      "trainer.total_epochs": "10", // 11 records → 3 batches of 3 a pass
      "trainer.save_freq": "10",
      "trainer.test_freq": "10",
    });
    const text = readFileSync(join(out, "overrides.txt"), "utf8");
    expect(text).toMatch(/^# group_size = 4\nactor_rollout_ref\.rollout\.n=4$/m);
    expect(text).toMatch(/^# {3}threads = 1: /m);
    expect(r.unmapped.map((u) => u.setting)).toContain("threads");
    expect(r.unmapped.map((u) => u.setting)).toContain("engine");
    expect(r.unmapped.map((u) => u.setting)).not.toContain("engine_url"); // listed once, under engine
    expect(r.unmapped.map((u) => u.setting)).not.toContain("lr");
    const readme = readFileSync(join(out, "README.md"), "utf8");
    expect(readme).toContain("`<|response_start|>` is token 3: nrt's `<answer_start>` renamed");
    expect(readme).toContain("temperature");
  });

  it("run.sh passes the data, the model, every override and the caller's extra ones to the recipe", () => {
    const fake = join(tmp, "fake-bin");
    mkdirSync(fake, { recursive: true });
    writeFileSync(join(fake, "python3"), "#!/bin/sh\nprintf '%s\\n' \"$@\"\n");
    chmodSync(join(fake, "python3"), 0o755);
    const p = spawnSync("bash", [join(out, "run.sh"), "trainer.project_name=x"], {
      encoding: "utf8",
      env: { ...process.env, PATH: `${fake}:${process.env.PATH}`, MLP_WORKER_GPU: "2" },
    });
    expect(p.status, p.stderr).toBe(0);
    const args = p.stdout.trimEnd().split("\n");
    expect(args.slice(0, 2)).toEqual(["-m", "recipe.nrt.main_nrt"]);
    expect(args).toContain(`data.train_files='${out}/train.parquet'`);
    expect(args).toContain(`data.val_files='${out}/test.parquet'`);
    expect(args).toContain(`actor_rollout_ref.model.path='${out}/model'`);
    for (const [k, v] of readOverrides(join(out, "overrides.txt"))) expect(args).toContain(`${k}=${v}`);
    expect(args).toContain("trainer.n_gpus_per_node=2");
    expect(args).toContain("actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=12"); // 3 × 4 sequences
    expect(args.at(-1)).toBe("trainer.project_name=x");
  });

  it("replaces an earlier export, and refuses a directory that holds something else", () => {
    const again = exportVerlNrt(out, { model: BASE, data, settings: settings({}), settingsFrom: "defaults" });
    expect(again.testRows).toBeNull();
    expect(existsSync(join(out, "test.parquet"))).toBe(false);
    expect(readOverrides(join(out, "overrides.txt")).get("algorithm.reward_agg_mode")).toBe("weighted_sum_log_prob");
    const other = join(tmp, "other");
    mkdirSync(other);
    writeFileSync(join(other, "notes.txt"), "mine");
    expect(() => exportVerlNrt(other, { model: BASE, data, settings: settings({}), settingsFrom: "x" })).toThrow(
      /other: is not empty and holds no earlier verl-nrt export/,
    );
    expect(readFileSync(join(other, "notes.txt"), "utf8")).toBe("mine");
  });
});

describe("verl-nrt export of a model without ⟨answer_start⟩, with its own chat template", () => {
  const dir = join(tmp, "plain");
  const model = join(dir, "model");
  const out = join(dir, "out");
  const data = join(dir, "qa.jsonl");
  const TEMPLATE = "{{ bos_token }}{% for m in messages %}{{ m['content'] }};{% endfor %}";
  let r: VerlNrtResult;
  let source: Model;

  beforeAll(() => {
    // the char tokenizer without <answer_start> (id 3 left unused), and a model whose vocab stops at 30
    const json = charTokenizerJson();
    json.added_tokens = json.added_tokens.filter((t) => t.content !== "<answer_start>");
    delete (json.model.vocab as Record<string, number>)["<answer_start>"];
    const cfg = llamaConfig({
      vocabSize: CHAR_VOCAB_SIZE,
      hiddenSize: 16,
      numLayers: 1,
      numHeads: 2,
      numKvHeads: 1,
      intermediateSize: 32,
      bosTokenId: CHAR_IDS.bos,
      eosTokenId: CHAR_IDS.eos,
    });
    source = Model.init(cfg, 11, 0.1);
    const tc = { bos_token: "<s>", eos_token: "</s>", chat_template: TEMPLATE };
    saveModelDir(model, source, {
      "tokenizer.json": JSON.stringify(json),
      "tokenizer_config.json": JSON.stringify(tc),
    });
    const chat = {
      messages: [
        { role: "system", content: "a b" },
        { role: "user", content: "a2;a" },
        { role: "assistant", content: "a=2" },
      ],
    };
    writeFileSync(data, `${[...QA_LINES, JSON.stringify(chat)].join("\n")}\n`);
    r = exportVerlNrt(out, { model, data, settings: settings({ method: "verifree" }), settingsFrom: "flags" });
  });

  it("adds <|response_start|> after the last id, its embedding and output rows copied from ⟨eos⟩'s", () => {
    expect(r).toMatchObject({ responseStartId: 30, origin: "added", templateAdded: false, testRows: null });
    const exported = loadModelDir(join(out, "model")).model;
    expect(exported.config.vocabSize).toBe(31);
    const C = 16;
    for (const name of ["model.embed_tokens.weight", "lm_head.weight"]) {
      const w = exported.view(name);
      const s = source.view(name);
      expect(w.subarray(30 * C, 31 * C)).toEqual(s.subarray(2 * C, 3 * C));
      expect(w.subarray(0, 30 * C)).toEqual(s);
    }
    const tok = Tokenizer.fromJson(readFileSync(join(out, "model", "tokenizer.json"), "utf8"), "x", {});
    expect(tok.encode("<|response_start|>")).toEqual([30]);
    expect(tok.encode("a1<|response_start|>b=3")).toEqual([14, 5, 30, 15, 26, 7]);
  });

  it("keeps the model's chat template, so the recipe renders the prompts nrt trains on", () => {
    const tc = JSON.parse(readFileSync(join(out, "model", "tokenizer_config.json"), "utf8"));
    expect(tc.chat_template).toBe(TEMPLATE);
    expect(tc.additional_special_tokens).toEqual(["<|response_start|>"]);
    const src = loadModel(model);
    const template = readChatTemplate(join(out, "model"))!;
    const exported = loadModel(join(out, "model")).tokenizer;
    const { rows } = readBack(join(out, "train.parquet"));
    expect(rows).toHaveLength(QA_LINES.length + 1);
    expect(rows.at(-1)!.prompt).toEqual([
      { role: "system", content: "a b" },
      { role: "user", content: "a2;a" },
    ]);
    for (const row of rows) {
      const ids = exported.encode(template.render(row.prompt, { addGenerationPrompt: true }));
      const messages = row.prompt as { role: string; content: string }[];
      expect(ids).toEqual(promptIds(src.tokenizer, src.chatTemplate, { question: "", messages }));
    }
    expect(exported.encode(template.render(rows.at(-1)!.prompt))).toEqual([1, 14, 29, 15, 28, 14, 6, 28, 14, 28]);
  });

  it("maps verifree: prob reward, leave-one-out advantage folded into the trace coefficient, no test split", () => {
    const o = readOverrides(join(out, "overrides.txt"));
    expect(Object.fromEntries(o)).toMatchObject({
      "algorithm.reward_agg_mode": "prob",
      "algorithm.scale_reward_by": "null",
      "algorithm.use_fixed_token_reward": "false",
      "actor_rollout_ref.actor.trace_loss_coef": String(8 / 7),
      "trainer.test_freq": "-1",
      "actor_rollout_ref.rollout.top_k": "-1",
    });
    expect(readFileSync(join(out, "run.sh"), "utf8")).toContain(`"data.val_files='$here/train.parquet'"`);
  });
});

describe("verl-nrt export errors", () => {
  const out = join(tmp, "err-out");
  const write = (name: string, lines: string[]) => {
    const p = join(tmp, name);
    writeFileSync(p, `${lines.join("\n")}\n`);
    return p;
  };
  const run = (data: string, cfg: Record<string, unknown> = {}) =>
    exportVerlNrt(out, { model: BASE, data, settings: settings(cfg), settingsFrom: "test" });

  it("names the file and line of a malformed record and of a missing field, and writes nothing", () => {
    const bad = write("bad.jsonl", [QA_LINES[0], "{not json", QA_LINES[1]]);
    expect(() => run(bad)).toThrow(/bad\.jsonl:2: malformed JSON/);
    const missing = write("missing.jsonl", [QA_LINES[0], QA_LINES[1], '{"question": "a1,b+2;b"}']);
    expect(() => run(missing)).toThrow(/missing\.jsonl:3: "answer" must be a string/);
    const chat = write("chat.jsonl", ['{"messages": [{"role": "user", "content": "a1;a"}]}']);
    expect(() => run(chat)).toThrow(/chat\.jsonl:1: chat record has no assistant turn/);
    expect(existsSync(out)).toBe(false);
  });

  it("refuses a record the model cannot hold with its trace, and sft, which has no traces", () => {
    const long = write("long.jsonl", [JSON.stringify({ question: "a1,b+2;b", answer: "b=3".repeat(80) })]);
    expect(() => run(long)).toThrow(/long\.jsonl:1: prompt and answer take 251 tokens, more than the model's context/);
    const ok = write("ok.jsonl", QA_LINES);
    expect(() => run(ok, { method: "sft" })).toThrow(/method: sft trains without traces/);
    expect(existsSync(out)).toBe(false);
  });

  it("lists a reward baseline the recipe lacks (rlpr's clip) as unmapped, with a warning", () => {
    const r = run(write("ok2.jsonl", QA_LINES), { method: "rlpr" });
    expect(r.unmapped).toContainEqual(expect.objectContaining({ setting: "baseline", value: "clip" }));
    expect(r.warnings.join("\n")).toMatch(/baseline = clip has no counterpart/);
    const o = readOverrides(join(out, "overrides.txt"));
    expect(o.get("algorithm.reward_agg_mode")).toBe("arithmetic_mean");
    expect(o.get("actor_rollout_ref.actor.token_loss_coef")).toBe("0"); // token_weight none
    rmSync(out, { recursive: true });
  });
});

describe("nrt export --format verl-nrt (CLI)", () => {
  const nrt = (...args: string[]) => {
    const p = spawnSync(process.execPath, [join(ROOT, "bin", "nrt.js"), ...args], {
      encoding: "utf8",
      timeout: 120_000,
    });
    return { code: p.status, stdout: p.stdout, stderr: p.stderr };
  };

  it("takes a run directory's own settings, --config over them, and reports bad flags with exit code 2", () => {
    ensureBuilt("src/cli/commands/export.ts");
    const run = join(tmp, "run");
    cpSync(BASE, join(run, "final"), { recursive: true });
    const data = join(tmp, "cli.jsonl");
    writeFileSync(data, `${QA_LINES.join("\n")}\n`);
    const train = { ...settings({}), model: BASE, data, out: run, groupSize: 6, lr: 0.01 };
    writeFileSync(join(run, "run_config.json"), JSON.stringify({ train, versions: {} }));
    const cfg = join(tmp, "over.yaml");
    writeFileSync(cfg, "lr: 0.005\n");
    const out = join(tmp, "cli-out");
    const r = nrt("export", "--format", "verl-nrt", run, "--config", cfg, "-o", out, "--json");
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ trainRows: QA_LINES.length, responseStartId: 3 });
    const o = readOverrides(join(out, "overrides.txt"));
    expect(o.get("actor_rollout_ref.rollout.n")).toBe("6"); // from run_config.json
    expect(o.get("actor_rollout_ref.actor.optim.lr")).toBe("0.005"); // --config over it
    expect(readFileSync(join(out, "overrides.txt"), "utf8")).toContain(`${run}/run_config.json over ${cfg}`);

    writeFileSync(cfg, "lr: 0.005\ngroup_sise: 4\n");
    const badKey = nrt("export", "--format", "verl-nrt", BASE, "--data", data, "--config", cfg, "-o", join(tmp, "x"));
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toMatch(/over\.yaml: unknown key "group_sise"/);
    const badDtype = nrt(
      "export",
      "--format",
      "verl-nrt",
      BASE,
      "--data",
      data,
      "-o",
      join(tmp, "x"),
      "--dtype",
      "f16",
    );
    expect(badDtype.code).toBe(2);
    expect(badDtype.stderr).toMatch(/--dtype: only for --format gguf/);
    const noData = nrt("export", "--format", "verl-nrt", BASE, "-o", join(tmp, "x"));
    expect(noData.code).toBe(2);
    expect(noData.stderr).toMatch(/training data is required/);
    expect(existsSync(join(tmp, "x"))).toBe(false);
  });
});
