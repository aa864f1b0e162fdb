import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { NrtError } from "../../src/errors.js";
import { importLlama2c } from "../../src/import/llama2c.js";
import { readLlama2cHeader } from "../../src/import/llama2c-checkpoint.js";
import { byteToken, llama2cTokenizerJson, readLlama2cVocab } from "../../src/import/llama2c-tokenizer.js";
import { loadModel } from "../../src/io/load.js";
import { setThreads } from "../../src/model/native.js";
import { Tokenizer } from "../../src/tokenizer/tokenizer.js";
import { llama2cEncode } from "./llama2c-oracle.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** the real model, committed as a fixture (MIT; test/fixtures/llama2c/SOURCE.md): a missing file fails the tests */
const FIXTURES = join(ROOT, "test", "fixtures", "llama2c");
const MODEL = join(FIXTURES, "stories260K.bin");
const TOK = join(FIXTURES, "tok512.bin");
const GOLDEN = join(FIXTURES, "once-upon-a-time.txt");

const tmp = mkdtempSync(join(tmpdir(), "nrt-llama2c-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
setThreads(1);

const TEXTS = [
  "Once upon a time",
  "Lily and Ben went to the park. They saw a big dog!",
  "The end.\nOnce upon a time, there was a little girl named Lily.",
  "  two  spaces and a\ttab",
  "héllo wörld — 😀 日本語 ™ â€",
  "123 + 456 = 579; x*y, (a|b) [c] ~d <0x41>",
  "a",
  " leading space",
  "trailing space ",
  "Tom said, \"I'm happy!\" and Sue's cat ran away...",
];

describe("the committed fixtures", () => {
  it("are the bytes SOURCE.md describes (sha256), with the MIT notice beside them", () => {
    const source = readFileSync(join(FIXTURES, "SOURCE.md"), "utf8");
    for (const f of [MODEL, TOK]) {
      const sha = createHash("sha256").update(readFileSync(f)).digest("hex");
      expect(source, f).toContain(`\`${sha}\``);
    }
    expect(readFileSync(join(FIXTURES, "LICENSE"), "utf8")).toMatch(/MIT License/);
  });
});

describe("llama2.c tokenizer → tokenizer.json", () => {
  const vocab = readLlama2cVocab(readFileSync(TOK), 512, TOK);
  const tok = Tokenizer.fromJson(llama2cTokenizerJson(vocab), "tok512");

  it("reads tok512.bin: specials, byte tokens, 512 scored pieces", () => {
    expect(vocab.pieces.length).toBe(512);
    expect(vocab.pieces.slice(0, 4)).toEqual(["<unk>", "\n<s>\n", "\n</s>\n", "<0x00>"]);
    expect(vocab.pieces[258]).toBe(byteToken(255));
    expect(tok.bosId).toBe(1);
    expect(tok.eosId).toBe(2);
    expect(tok.idToToken(265)).toBe("▁the");
  });

  it("encodes like run.c's encode (the oracle re-implemented in the test)", () => {
    for (const t of TEXTS) {
      // run.c always prepends ⟨bos⟩ (bos=1 in generate); nrt's encode adds no special token
      expect([1, ...tok.encode(t)], JSON.stringify(t)).toEqual(llama2cEncode(vocab, t, true));
    }
    // every vocabulary entry, written as text, tokenizes the same way in both
    for (let id = 259; id < 512; id++) {
      const t = vocab.pieces[id];
      expect(tok.encode(t), `piece ${id} ${JSON.stringify(t)}`).toEqual(llama2cEncode(vocab, t, false));
    }
  });

  it("decodes back to the text exactly (the Strip decoder removes only the dummy-prefix space)", () => {
    for (const t of TEXTS) expect(tok.decode(tok.encode(t))).toBe(t);
  });

  it("refuses a tokenizer file that does not fit the model's vocab size", () => {
    expect(() => readLlama2cVocab(readFileSync(TOK), 511, TOK)).toThrow(/bytes left after 511 tokens/);
    expect(() => readLlama2cVocab(readFileSync(TOK), 513, TOK)).toThrow(NrtError);
  });
});

describe("nrt import llama2c on stories260K", () => {
  const dir = join(tmp, "stories260K");
  const r = importLlama2c(MODEL, TOK, dir);

  it("writes a SPEC §6 model directory with run.c's hyperparameters", () => {
    expect(r.config).toMatchObject({
      vocabSize: 512,
      hiddenSize: 64,
      intermediateSize: 172,
      numLayers: 5,
      numHeads: 8,
      numKvHeads: 4,
      headDim: 8,
      maxPositionEmbeddings: 512,
      tied: true,
      bosTokenId: 1,
      eosTokenId: 2,
      ropeTheta: 10000,
      rmsNormEps: 1e-5,
    });
    const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    expect(cfg).toMatchObject({
      model_type: "llama",
      tie_word_embeddings: true,
      rope_theta: 10000,
      rms_norm_eps: 1e-5,
    });
  });

  it('continues "Once upon a time" greedily with exactly the text run.c printed (64 positions, ⟨bos⟩ first)', () => {
    const { model, tokenizer } = loadModel(dir);
    const prompt = [1, ...tokenizer.encode("Once upon a time")];
    const steps = 64; // run.c -n 64: the tokens at positions 1..64 are printed, the prompt's included
    const maxNew = steps + 1 - prompt.length;
    const g = model.runner.generate(Int32Array.from(prompt), Int32Array.of(prompt.length), {
      maxNew,
      temperature: 0,
      seed: 0,
      stop: [1], // run.c stops, printing nothing, when ⟨bos⟩ comes
    });
    let ids = Array.from(g.tokens.subarray(0, g.lengths[0]));
    if (ids.at(-1) === 1) ids = ids.slice(0, -1);
    const text = `${tokenizer.decode([...prompt.slice(1), ...ids])}\n`;
    expect(text).toBe(readFileSync(GOLDEN, "utf8"));
  });
});

describe("llama2.c checkpoint layout (a synthetic untied GQA model)", () => {
  // dim 8, hidden 12, 2 layers, 2 query heads of size 4 sharing 1 kv head, vocab -300 (untied), seq_len 5
  const h = { C: 8, F: 12, L: 2, NH: 2, NKV: 1, V: 300, T: 5 };
  const HS = h.C / h.NH;
  const n =
    h.V * h.C +
    h.L * (2 * h.C + h.NH * HS * h.C + 2 * h.NKV * HS * h.C + h.C * h.NH * HS + 3 * h.F * h.C) +
    h.C +
    h.T * HS +
    h.V * h.C;
  const floats = Float32Array.from({ length: n }, (_, i) => (i % 1000) / 1000 - 0.5);
  const header = Int32Array.of(h.C, h.F, h.L, h.NH, h.NKV, -h.V, h.T);
  const bytes = new Uint8Array(28 + 4 * n);
  bytes.set(new Uint8Array(header.buffer), 0);
  bytes.set(new Uint8Array(floats.buffer), 28);
  const modelPath = join(tmp, "tiny.bin");
  writeFileSync(modelPath, bytes);
  const tokPath = join(tmp, "tiny-tok.bin");
  writeFileSync(tokPath, tinyTokenizer(h.V));

  it("maps every tensor to its Hugging Face name, permuting q/k rows per head into the half-split form", () => {
    const dir = join(tmp, "tiny");
    const r = importLlama2c(modelPath, tokPath, dir);
    expect(r.config).toMatchObject({ tied: false, numKvHeads: 1, vocabSize: 300, maxPositionEmbeddings: 5 });
    const { model } = loadModel(dir);
    let at = 0;
    const next = (k: number) => {
      at += k;
      return floats.subarray(at - k, at);
    };
    expect(model.view("model.embed_tokens.weight")).toEqual(next(h.V * h.C));
    const attNorm = next(h.L * h.C);
    const wq = next(h.L * h.NH * HS * h.C);
    const wk = next(h.L * h.NKV * HS * h.C);
    const wv = next(h.L * h.NKV * HS * h.C);
    const wo = next(h.L * h.C * h.NH * HS);
    const ffnNorm = next(h.L * h.C);
    const w1 = next(h.L * h.F * h.C);
    const w2 = next(h.L * h.C * h.F);
    const w3 = next(h.L * h.F * h.C);
    const finalNorm = next(h.C);
    next(h.T * HS);
    const wcls = next(h.V * h.C);
    expect(at).toBe(n);
    const layer = (w: Float32Array, l: number) => w.subarray((l * w.length) / h.L, ((l + 1) * w.length) / h.L);
    // HF row (head, half·HS/2 + j) is llama2.c row (head, 2j + half): written out by hand, not with the helper
    const halfSplit = (w: Float32Array, heads: number) => {
      const out = new Float32Array(w.length);
      for (let head = 0; head < heads; head++)
        for (let half = 0; half < 2; half++)
          for (let j = 0; j < HS / 2; j++)
            for (let c = 0; c < h.C; c++)
              out[(head * HS + half * (HS / 2) + j) * h.C + c] = w[(head * HS + 2 * j + half) * h.C + c];
      return out;
    };
    for (let l = 0; l < h.L; l++) {
      const p = `model.layers.${l}`;
      expect(model.view(`${p}.input_layernorm.weight`)).toEqual(layer(attNorm, l));
      expect(model.view(`${p}.self_attn.q_proj.weight`)).toEqual(halfSplit(layer(wq, l), h.NH));
      expect(model.view(`${p}.self_attn.k_proj.weight`)).toEqual(halfSplit(layer(wk, l), h.NKV));
      expect(model.view(`${p}.self_attn.v_proj.weight`)).toEqual(layer(wv, l));
      expect(model.view(`${p}.self_attn.o_proj.weight`)).toEqual(layer(wo, l));
      expect(model.view(`${p}.post_attention_layernorm.weight`)).toEqual(layer(ffnNorm, l));
      expect(model.view(`${p}.mlp.gate_proj.weight`)).toEqual(layer(w1, l));
      expect(model.view(`${p}.mlp.down_proj.weight`)).toEqual(layer(w2, l));
      expect(model.view(`${p}.mlp.up_proj.weight`)).toEqual(layer(w3, l));
    }
    expect(model.view("model.norm.weight")).toEqual(finalNorm);
    expect(model.view("lm_head.weight")).toEqual(wcls);
  });

  it("refuses truncated files and versioned checkpoints, naming the file", () => {
    const bad = join(tmp, "bad.bin");
    writeFileSync(bad, bytes.subarray(0, bytes.length - 4));
    expect(() => importLlama2c(bad, tokPath, join(tmp, "bad"))).toThrow(/bad\.bin: file is \d+ bytes but its header/);
    const v1 = bytes.slice(0, 64);
    new DataView(v1.buffer).setUint32(0, 0x616b3432, true);
    expect(() => readLlama2cHeader(v1, "v1.bin")).toThrow(/versioned/);
  });
});

/** A llama2.c tokenizer.bin with the specials, the 256 byte tokens and then single letters / filler pieces. */
function tinyTokenizer(vocabSize: number): Uint8Array {
  const pieces = ["<unk>", "\n<s>\n", "\n</s>\n", ...Array.from({ length: 256 }, (_, b) => byteToken(b))];
  for (let i = 0; pieces.length < vocabSize; i++) pieces.push(i < 26 ? String.fromCharCode(97 + i) : `w${i}`);
  const chunks: Buffer[] = [Buffer.from(Int32Array.of(8).buffer)];
  pieces.forEach((p, id) => {
    const b = Buffer.from(p, "utf8");
    const head = Buffer.alloc(8);
    head.writeFloatLE(id < 259 ? 0 : -id, 0);
    head.writeInt32LE(b.length, 4);
    chunks.push(head, b);
  });
  return Buffer.concat(chunks);
}
