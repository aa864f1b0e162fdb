import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NrtError } from "../../src/errors.js";
import { loadModelDir, markLatestCheckpoint, resolveModelDir, saveModelDir } from "../../src/io/model-dir.js";
import { readSafetensors, writeSafetensors } from "../../src/io/safetensors.js";
import { llamaConfig, type ModelConfig } from "../../src/model/config.js";
import { Model } from "../../src/model/model.js";
import { refusal } from "../helpers/refusal.js";

const tmp = mkdtempSync(join(tmpdir(), "nrt-md-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const small = { vocabSize: 16, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4 };
const configs: [string, ModelConfig][] = [
  ["llama GQA untied", llamaConfig({ ...small, numKvHeads: 2, eosTokenId: 2, bosTokenId: 1 })],
  ["llama GQA tied", llamaConfig({ ...small, numKvHeads: 1, tied: true, answerStartTokenId: 3 })],
  [
    "mistral head_dim ≠ hidden/heads, sliding window",
    llamaConfig({ ...small, modelType: "mistral", headDim: 12, slidingWindow: 5 }),
  ],
];

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** A saved model directory whose weights the test then rewrites with `edit`. */
function dirWithTensors(name: string, edit: (ts: { name: string; shape: number[]; data: Float32Array }[]) => void) {
  const dir = join(tmp, name);
  const model = Model.init(configs[0][1], 7);
  saveModelDir(dir, model);
  const ts = model.table.map((p) => ({ name: p.name, shape: [...p.shape], data: model.view(p.name).slice() }));
  edit(ts);
  writeSafetensors(join(dir, "model.safetensors"), ts);
  return dir;
}

describe("saveModelDir / loadModelDir round trip", () => {
  for (const [what, config] of configs) {
    it(`${what}: bit-identical weights and equal config`, () => {
      const dir = join(tmp, what.replace(/\W+/g, "-"));
      const model = Model.init(config, 42);
      saveModelDir(dir, model, { "tokenizer.json": '{"version":"1.0"}', "extra/bytes.bin": new Uint8Array([9]) });
      expect(readdirSync(dir).sort()).toEqual(["config.json", "extra", "model.safetensors", "tokenizer.json"]);
      const { model: back, config: c } = loadModelDir(dir);
      expect(c).toEqual(config);
      expect(back.config).toEqual(config);
      expect(bits(back.params)).toEqual(bits(model.params));
      const names = [...readSafetensors(join(dir, "model.safetensors")).tensors.keys()];
      expect(names.includes("lm_head.weight")).toBe(!config.tied);
      expect(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")).torch_dtype).toBe("float32");
    });
  }

  it("with tied embeddings, a stored lm_head.weight is ignored", () => {
    const dir = join(tmp, "tied-head");
    const model = Model.init(configs[1][1], 1);
    saveModelDir(dir, model);
    const ts = model.table.map((p) => ({ name: p.name, shape: p.shape, data: model.view(p.name) }));
    ts.push({ name: "lm_head.weight", shape: [16, 32], data: new Float32Array(16 * 32) });
    writeSafetensors(join(dir, "model.safetensors"), ts);
    expect(bits(loadModelDir(dir).model.params)).toEqual(bits(model.params));
  });
});

describe("loadModelDir refuses bad directories, naming the file and tensor", () => {
  it("missing config.json / model.safetensors", () => {
    const dir = join(tmp, "empty");
    mkdirSync(dir);
    expect(refusal(() => loadModelDir(dir))).toMatch(/empty\/config\.json: missing config\.json/);
    writeFileSync(join(dir, "config.json"), JSON.stringify({ model_type: "llama" }));
    expect(refusal(() => loadModelDir(dir))).toMatch(/config\.json: vocab_size: is required/);
    saveModelDir(join(tmp, "ok"), Model.init(configs[0][1], 1));
    writeFileSync(join(dir, "config.json"), readFileSync(join(tmp, "ok", "config.json")));
    expect(refusal(() => loadModelDir(dir))).toMatch(/empty\/model\.safetensors: missing model\.safetensors/);
    writeFileSync(join(dir, "config.json"), "{ not json");
    expect(refusal(() => loadModelDir(dir))).toMatch(/config\.json: not valid JSON/);
  });

  it("a missing tensor", () => {
    const dir = dirWithTensors("missing", (ts) => ts.splice(3, 1));
    expect(refusal(() => loadModelDir(dir))).toMatch(
      /model\.safetensors: model\.layers\.0\.self_attn\.k_proj\.weight: missing tensor \(expected shape \[16, 32\]\)/,
    );
  });

  it("a wrong shape", () => {
    const dir = dirWithTensors("shape", (ts) => {
      ts[0].shape = [32, 16];
    });
    expect(refusal(() => loadModelDir(dir))).toMatch(
      /model\.embed_tokens\.weight: expected shape \[16, 32\], found \[32, 16\]/,
    );
    // a config.json that claims a huge model is caught before anything that size is allocated
    const huge = dirWithTensors("huge", () => {});
    const cfg = JSON.parse(readFileSync(join(huge, "config.json"), "utf8"));
    writeFileSync(join(huge, "config.json"), JSON.stringify({ ...cfg, vocab_size: 2 ** 31 - 1 }));
    expect(refusal(() => loadModelDir(huge))).toMatch(
      /embed_tokens\.weight: expected shape \[2147483647, 32\], found \[16, 32\]/,
    );
  });

  it("a NaN or infinite weight", () => {
    const dir = dirWithTensors("nan", (ts) => {
      ts[2].data[5] = Number.NaN;
    });
    expect(refusal(() => loadModelDir(dir))).toMatch(/q_proj\.weight: element 5 is NaN \(weights must be finite\)/);
    const inf = dirWithTensors("inf", (ts) => {
      ts[1].data[0] = -Infinity;
    });
    expect(refusal(() => loadModelDir(inf))).toMatch(/input_layernorm\.weight: element 0 is -Infinity/);
  });

  it("an unexpected tensor", () => {
    const dir = dirWithTensors("extra", (ts) =>
      ts.push({ name: "model.layers.2.mlp.up_proj.weight", shape: [1], data: new Float32Array(1) }),
    );
    expect(refusal(() => loadModelDir(dir))).toMatch(/model\.layers\.2\.mlp\.up_proj\.weight: unexpected tensor/);
  });

  it("a truncated weights file", () => {
    const dir = dirWithTensors("trunc", () => {});
    const path = join(dir, "model.safetensors");
    writeFileSync(path, readFileSync(path).subarray(0, 1000));
    expect(refusal(() => loadModelDir(dir))).toMatch(/model\.safetensors: /);
  });
});

describe("saveModelDir is all or nothing", () => {
  it("a NaN weight: nothing is written and an existing directory is untouched", () => {
    const parent = join(tmp, "atomic");
    const dir = join(parent, "m");
    const model = Model.init(configs[0][1], 3);
    model.view("model.norm.weight")[2] = Number.NaN;
    expect(refusal(() => saveModelDir(dir, model))).toMatch(
      /model\.safetensors: model\.norm\.weight: element 2 is NaN/,
    );
    expect(existsSync(parent)).toBe(false);

    const good = Model.init(configs[0][1], 4);
    saveModelDir(dir, good);
    expect(() => saveModelDir(dir, model)).toThrow(NrtError);
    expect(bits(loadModelDir(dir).model.params)).toEqual(bits(good.params));
  });

  it("a file that fails mid-write: nothing new is left, the old directory stays", () => {
    const parent = join(tmp, "atomic2");
    const dir = join(parent, "m");
    const good = Model.init(configs[0][1], 5);
    saveModelDir(dir, good, { "tokenizer.json": "{}" });
    // "tokenizer.json/x" needs tokenizer.json to be a directory, but it was just written as a file
    expect(() =>
      saveModelDir(dir, Model.init(configs[0][1], 6), { "tokenizer.json": "{}", "tokenizer.json/x": "" }),
    ).toThrow();
    expect(readdirSync(parent)).toEqual(["m"]);
    expect(bits(loadModelDir(dir).model.params)).toEqual(bits(good.params));
    expect(() => saveModelDir(dir, good, { "config.json": "{}" })).toThrow(/may not replace config\.json/);
  });
});

describe("resolveModelDir: a run directory stands for its final model or latest checkpoint", () => {
  it("resolves model dir, run/final, run/checkpoints/<latest>, and refuses anything else", () => {
    const model = Model.init(configs[0][1], 1);
    const run = join(tmp, "run");
    saveModelDir(join(run, "checkpoints", "step-10"), model);
    saveModelDir(join(run, "checkpoints", "step-20"), model);
    expect(refusal(() => resolveModelDir(run))).toMatch(
      /run: no config\.json, final\/config\.json or checkpoints\/latest/,
    );
    markLatestCheckpoint(run, "step-10");
    expect(resolveModelDir(run)).toBe(join(run, "checkpoints", "step-10"));
    markLatestCheckpoint(run, "step-20");
    expect(resolveModelDir(run)).toBe(join(run, "checkpoints", "step-20"));
    saveModelDir(join(run, "final"), model);
    expect(resolveModelDir(run)).toBe(join(run, "final"));
    expect(resolveModelDir(join(run, "final"))).toBe(join(run, "final"));

    const other = join(tmp, "run2");
    mkdirSync(join(other, "checkpoints"), { recursive: true });
    writeFileSync(join(other, "checkpoints", "latest"), "../../etc\n");
    expect(refusal(() => resolveModelDir(other))).toMatch(/checkpoints\/latest: holds "..\/..\/etc"/);
    writeFileSync(join(other, "checkpoints", "latest"), "step-5\n");
    expect(refusal(() => resolveModelDir(other))).toMatch(
      /checkpoints\/latest: names step-5, but .* has no config\.json/,
    );
    expect(refusal(() => resolveModelDir(join(tmp, "nowhere")))).toMatch(/nowhere: does not exist/);
    expect(() => markLatestCheckpoint(run, "../x")).toThrow(NrtError);
  });
});
