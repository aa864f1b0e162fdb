// Weights as they come (SPEC §6): one file or shards with an index, float32/bfloat16/float16, written back likewise.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { resolveFields } from "../../src/config/schema.js";
import { type TrainConfig, trainFields } from "../../src/config/train-config.js";
import { bf16Bytes, decodeBF16 } from "../../src/io/_dtypes.js";
import { writeDirAtomic } from "../../src/io/atomic.js";
import { loadModel } from "../../src/io/load.js";
import { loadModelDir, modelDirFiles, saveModelDir } from "../../src/io/model-dir.js";
import { encodeSafetensors } from "../../src/io/safetensors.js";
import { parseSize, readWeights, WEIGHTS_INDEX_FILE, weightFiles } from "../../src/io/weights.js";
import { charTokenizerJson } from "../../src/tokenizer/char-tokenizer-json.js";
import { train } from "../../src/train/trainer.js";
import { Rng } from "../../src/util/rng.js";
import { QA_LINES, TINY, tinyModel } from "../helpers/tiny-run.js";

const tmp = () => mkdtempSync(join(tmpdir(), "nrt-weights-"));

/** The bfloat16 nearest to x by brute force over its two neighbours (ties to the even one), as float32. */
function nearestBf16(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  const lo = u[0] & 0xffff0000;
  const hi = lo + 0x10000;
  const a = new Float32Array(new Uint32Array([lo]).buffer)[0];
  const b = new Float32Array(new Uint32Array([hi >>> 0]).buffer)[0];
  // past the largest finite bfloat16 the next value up is 2^128, which rounds to infinity (IEEE overflow)
  const bv = (hi & 0x7fffffff) >>> 0 === 0x7f800000 ? Math.sign(x) * 2 ** 128 : b;
  const da = Math.abs(x - a);
  const db = Math.abs(bv - x);
  if (da < db) return a;
  if (db < da) return b;
  return ((lo >>> 16) & 1) === 0 ? a : b;
}

describe("bfloat16 writing", () => {
  it("rounds to nearest, ties to even, keeps ±∞ and NaN", () => {
    const rng = new Rng(1);
    const xs = Float32Array.from({ length: 5000 }, (_, i) => (i % 2 ? 1e-3 : 30) * rng.normal());
    const specials = new Float32Array(new Uint32Array([0x3f808000, 0x3f818000, 0x7f7fffff, 0x00000001]).buffer);
    const all = Float32Array.from([...xs, ...specials, 0, -0, 1, -2.5, Infinity, -Infinity]);
    const back = decodeBF16(bf16Bytes(all));
    for (let i = 0; i < all.length; i++) expect(back[i], `${all[i]}`).toBe(nearestBf16(all[i]));
    expect(Array.from(back.subarray(xs.length, xs.length + 2))).toEqual([1, 1.015625]); // both ties go to even
    expect(decodeBF16(bf16Bytes(Float32Array.from([Number.NaN])))[0]).toBeNaN();
  });
});

describe("sharded weights", () => {
  it("splits over the limit in name order, with an index save_pretrained's way, and reads back the same tensors", () => {
    const model = tinyModel();
    const tensors = model.table.map((p) => ({ name: p.name, shape: p.shape, data: model.view(p.name) }));
    const limit = 20_000; // bytes, in bf16: several shards
    const files = weightFiles(tensors, "BF16", limit, "out");
    const index = JSON.parse(files[WEIGHTS_INDEX_FILE] as string);
    const shards = Object.keys(files).filter((f) => f !== WEIGHTS_INDEX_FILE);
    expect(shards.length).toBeGreaterThan(2);
    for (const [i, f] of shards.entries())
      expect(f).toBe(
        `model-${String(i + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`,
      );
    const total = tensors.reduce((a, t) => a + 2 * t.data.length, 0);
    expect(index.metadata.total_size).toBe(total);
    expect(Object.keys(index.weight_map).sort()).toEqual(tensors.map((t) => t.name).sort());
    const dir = join(tmp(), "m");
    writeDirAtomic(dir, files);
    for (const f of shards) {
      const inShard = tensors.filter((t) => index.weight_map[t.name] === f);
      const bytes = inShard.reduce((a, t) => a + 2 * t.data.length, 0);
      expect(bytes <= limit || inShard.length === 1).toBe(true);
    }
    const r = readWeights(dir);
    expect(r.sharded).toBe(true);
    expect(r.dtype).toBe("BF16");
    for (const t of tensors)
      expect(Array.from(r.tensors.get(t.name)!.data)).toEqual(Array.from(t.data).map(nearestBf16));
    // under the limit: one file, no index
    expect(Object.keys(weightFiles(tensors, "F32", 1e9, "out"))).toEqual(["model.safetensors"]);
  });

  it("refuses an index that lies: missing shard, tensor in another shard, unlisted tensor, path outside, bad JSON", () => {
    const model = tinyModel();
    const tensors = model.table.map((p) => ({ name: p.name, shape: p.shape, data: model.view(p.name) }));
    const base = weightFiles(tensors, "F32", 40_000, "x");
    const write = (edit: (index: { weight_map: Record<string, string> }) => string | undefined) => {
      const dir = join(tmp(), "m");
      writeDirAtomic(dir, base);
      const index = JSON.parse(base[WEIGHTS_INDEX_FILE] as string);
      const out = edit(index);
      writeFileSync(join(dir, WEIGHTS_INDEX_FILE), out ?? JSON.stringify(index));
      return dir;
    };
    const [first, second] = Object.keys(base).filter((f) => f !== WEIGHTS_INDEX_FILE);
    const name0 = model.table[0].name;
    expect(() =>
      readWeights(
        write((ix) => {
          ix.weight_map["x.weight"] = "model-99.safetensors";
          return undefined;
        }),
      ),
    ).toThrow(/missing shard/);
    expect(() =>
      readWeights(
        write((ix) => {
          ix.weight_map[name0] = ix.weight_map[name0] === first ? second : first;
          return undefined;
        }),
      ),
    ).toThrow(/the index places this tensor in/);
    expect(() =>
      readWeights(
        write((ix) => {
          delete ix.weight_map[name0];
          return undefined;
        }),
      ),
    ).toThrow(/not listed in the index's weight_map/);
    expect(() =>
      readWeights(
        write((ix) => {
          ix.weight_map[name0] = "../model.safetensors";
          return undefined;
        }),
      ),
    ).toThrow(/must be the name of a file beside the index/);
    expect(() => readWeights(write(() => "{"))).toThrow(/model.safetensors.index.json: not valid JSON/);
    expect(() => readWeights(write(() => '{"weight_map": []}'))).toThrow(/"weight_map" must be an object/);
  });

  it("parses --max-shard-size as save_pretrained does (decimal units; KiB… binary)", () => {
    expect(parseSize("5GB")).toBe(5e9);
    expect(parseSize("500MB")).toBe(5e8);
    expect(parseSize("2GiB")).toBe(2 * 2 ** 30);
    expect(parseSize("1000")).toBe(1000);
    expect(() => parseSize("five")).toThrow(/--max-shard-size: must be a size/);
    expect(() => parseSize("0")).toThrow(/must be a size > 0/);
  });
});

describe("model directories as they come", () => {
  it("a pickle-only directory is refused with the reason and the conversion", () => {
    const dir = join(tmp(), "m");
    saveModelDir(dir, tinyModel());
    const files = readdirSync(dir);
    const only = join(tmp(), "pickle");
    mkdirSync(only);
    writeFileSync(join(only, "config.json"), readFileSync(join(dir, "config.json")));
    writeFileSync(join(only, "pytorch_model.bin"), "not really");
    expect(files).toContain("model.safetensors");
    expect(() => loadModelDir(only)).toThrow(
      /holds PyTorch pickle weights \(pytorch_model\.bin\) but no model\.safetensors: nrt reads safetensors only, because loading a pickle runs whatever code it holds; convert it .*safe_serialization=True/,
    );
  });

  it("skips rotary_emb.inv_freq buffers with a note and keeps refusing other extra tensors", () => {
    const model = tinyModel();
    const dir = join(tmp(), "m");
    const files = modelDirFiles(dir, model);
    const tensors = model.table.map((p) => ({ name: p.name, shape: p.shape, data: model.view(p.name) }));
    const inv = { name: "model.layers.0.self_attn.rotary_emb.inv_freq", shape: [8], data: new Float32Array(8).fill(1) };
    writeDirAtomic(dir, { ...files, "model.safetensors": encodeSafetensors([...tensors, inv]) });
    const r = loadModelDir(dir);
    expect(r.skipped).toEqual([inv.name]);
    expect(Array.from(r.model.params)).toEqual(Array.from(model.params));
    const bad = join(tmp(), "bad");
    writeDirAtomic(bad, {
      ...files,
      "model.safetensors": encodeSafetensors([...tensors, { ...inv, name: "extra.weight" }]),
    });
    expect(() => loadModelDir(bad)).toThrow(/extra\.weight: unexpected tensor/);
  });

  it("a sharded bf16 checkpoint trains 2 steps and is written back sharded in bf16, equal to the model rounded", () => {
    const dir = tmp();
    const src = join(dir, "base");
    const model = tinyModel(5);
    const tok = JSON.stringify(charTokenizerJson());
    const gen = JSON.stringify({ bos_token_id: 1, eos_token_id: [2], do_sample: true });
    saveModelDir(
      src,
      model,
      { "tokenizer.json": tok, "generation_config.json": gen },
      { dtype: "BF16", maxShardBytes: 20_000 },
    );
    expect(readdirSync(src)).toContain(WEIGHTS_INDEX_FILE);
    const loaded = loadModel(src);
    expect(loaded.dtype).toBe("BF16");
    expect(JSON.parse(readFileSync(join(src, "config.json"), "utf8")).torch_dtype).toBe("bfloat16");
    const data = join(dir, "train.jsonl");
    writeFileSync(data, `${QA_LINES.join("\n")}\n`);
    const out = join(dir, "run");
    const cfg = resolveFields(
      trainFields,
      undefined,
      { ...TINY, model: src, data, out, steps: 2, checkpointEvery: 2, maxShardSize: "20000" },
      "test",
    ) as TrainConfig;
    train(cfg);
    const final = join(out, "final");
    const names = readdirSync(final);
    expect(names).toContain(WEIGHTS_INDEX_FILE);
    expect(names.filter((n) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(n)).length).toBeGreaterThan(1);
    expect(readFileSync(join(final, "generation_config.json"), "utf8")).toBe(gen); // carried over as it is
    expect(JSON.parse(readFileSync(join(final, "config.json"), "utf8")).torch_dtype).toBe("bfloat16");
    // the step-2 checkpoint holds the trained float32 weights; final/ is them rounded to bfloat16
    const ckpt = loadModelDir(join(out, "checkpoints", "step-000002"));
    expect(ckpt.dtype).toBe("F32");
    const fin = loadModelDir(final);
    expect(fin.dtype).toBe("BF16");
    expect(Array.from(fin.model.params)).toEqual(Array.from(ckpt.model.params).map(nearestBf16));
    expect(Array.from(ckpt.model.params)).not.toEqual(Array.from(loaded.model.params)); // it did train
  });
});
