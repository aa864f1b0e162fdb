// A hand-built model for the eval tests (not a test file). Every probability it gives is chosen here.
//
// Circuit (V = 30 char tokens, hidden C = 32, one layer, one head, intermediate 1):
// - embedding row t = e_t (one-hot in dims 0..29); dims 30 (F) and 31 (Y) are free.
// - attention: q = k = 0, so every position attends uniformly to itself and all earlier ones; v reads the
//   "marker" tokens `=` and space, o writes a tiny 1e-4 · (share of markers so far) into F. Chain questions contain
//   neither, so F = 0 exactly on prompts and on answers given with no trace (or a trace without markers).
// - MLP (SwiGLU, one unit): gate reads "current token is ⟨answer_start⟩", up reads F, down writes into Y. So Y ≠ 0
//   only at an ⟨answer_start⟩ that follows a trace with a marker, and there it is huge (≥ ~1e3): after the final
//   RMSNorm it dominates, and the output row Y puts +30 on `7`: the answer becomes `7` with p ≈ 1.
// - everywhere else the final norm (weight √(1/C + eps)) gives back e_t exactly (up to F ≤ 6e-4, a relative
//   error below 1e-6), so logits = BIGRAM[current token]: a bigram model with exact probabilities.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { saveModelDir } from "../../src/io/model-dir.js";
import { llamaConfig } from "../../src/model/config.js";
import { Model } from "../../src/model/model.js";
import { CHAR_ALPHABET, CHAR_IDS, charTokenizerJson } from "../../src/tokenizer/char-tokenizer-json.js";

const V = 30;
const C = 32;
const F = 30;
const Y = 31;
const EPS = 1e-5;
/** logit of every token a bigram row does not list (p ≈ e^-40: nothing) */
const OFF = -40;

/** Token id of a character or special. */
export function id(ch: string): number {
  if (ch === "AS") return CHAR_IDS.answerStart;
  if (ch === "EOS") return CHAR_IDS.eos;
  const i = CHAR_ALPHABET.indexOf(ch);
  if (ch.length !== 1 || i < 0) throw new Error(`no token ${ch}`);
  return 4 + i;
}

/**
 * next-token distributions by current token ("AS" = ⟨answer_start⟩, "EOS" = ⟨eos⟩); rows not listed are uniform.
 * The prompt's last character is the last variable: `c` (k=3), `d` (k=4), `e` (k=5), `f` (k=6), `h` (k=8); the
 * non-chain question `a1` ends on `1`.
 */
export const BIGRAM: Record<string, Record<string, number>> = {
  c: { AS: 0.8, ",": 0.2 }, // k=3: answers at once (greedy), decision p = 0.8
  ",": { AS: 1 }, //          a trace "," has no marker: same answer as with no trace
  "1": { ",": 0.6, AS: 0.4 }, // non-chain question: greedy trace ",", decision p = 0.4
  d: { "=": 1 }, //           k=4: trace "=8" (or "=9"), emitted
  "=": { "8": 0.9, "9": 0.1 },
  "8": { AS: 1 },
  "9": { AS: 1 },
  e: { " ": 1 }, //           k=5: trace " " that ends on ⟨eos⟩ (another special)
  " ": { EOS: 1 },
  f: { g: 1 }, //             k=6: trace "ggg…" cut at the limit (no marker)
  g: { g: 1 },
  h: { " ": 0.7, AS: 0.3 }, // k=8: greedy traces; sampled traces 70 % of the time
  b: { "=": 1 }, //           the forced first trace token: "b=8", then ⟨answer_start⟩
  AS: { "5": 0.8, "3": 0.15, "7": 0.05 }, // the answer with no marker in the trace; after one: `7` (p ≈ 1)
  "5": { EOS: 1 },
  "3": { EOS: 1 },
  "7": { EOS: 1 },
};

/** The model described above (with another bigram table if given). */
export function tinyModel(bigram: Record<string, Record<string, number>> = BIGRAM): Model {
  const model = new Model(
    llamaConfig({
      vocabSize: V,
      hiddenSize: C,
      intermediateSize: 1,
      numLayers: 1,
      numHeads: 1,
      numKvHeads: 1,
      rmsNormEps: EPS,
      maxPositionEmbeddings: 128,
      bosTokenId: CHAR_IDS.bos,
      eosTokenId: CHAR_IDS.eos,
      answerStartTokenId: CHAR_IDS.answerStart,
    }),
  ); // all zeros
  const set = (name: string, cols: number, row: number, col: number, x: number) => {
    model.view(name)[row * cols + col] = x;
  };
  for (let t = 0; t < V; t++) set("model.embed_tokens.weight", C, t, t, 1);
  model.view("model.layers.0.input_layernorm.weight").fill(1);
  model.view("model.layers.0.post_attention_layernorm.weight").fill(1);
  set("model.layers.0.self_attn.v_proj.weight", C, 0, id("="), 1);
  set("model.layers.0.self_attn.v_proj.weight", C, 0, id(" "), 1);
  set("model.layers.0.self_attn.o_proj.weight", C, F, 0, 1e-4);
  set("model.layers.0.mlp.gate_proj.weight", C, 0, CHAR_IDS.answerStart, 4);
  set("model.layers.0.mlp.up_proj.weight", C, 0, F, 1e3);
  set("model.layers.0.mlp.down_proj.weight", 1, Y, 0, 1e3);
  model.view("model.norm.weight").fill(Math.sqrt(1 / C + EPS));
  const head = "lm_head.weight";
  for (const [from, row] of Object.entries(bigram)) {
    for (let v = 0; v < V; v++) set(head, C, v, id(from), OFF);
    for (const [to, p] of Object.entries(row)) set(head, C, id(to), id(from), Math.log(p));
  }
  set(head, C, id("7"), Y, 30);
  return model;
}

/** Writes the model with the SPEC §7 char tokenizer into a fresh temporary directory and returns its path. */
export function tinyModelDir(bigram: Record<string, Record<string, number>> = BIGRAM): string {
  const dir = join(mkdtempSync(join(tmpdir(), "nrt-eval-")), "model");
  saveModelDir(dir, tinyModel(bigram), { "tokenizer.json": JSON.stringify(charTokenizerJson()) });
  return dir;
}

/** Writes records as JSON Lines next to `dir` and returns the file's path. */
export function writeJsonl(dir: string, records: { question: string; answer: string }[]): string {
  const path = join(dir, "..", "data.jsonl");
  writeFileSync(path, records.map((r) => JSON.stringify(r)).join("\n"));
  return path;
}
