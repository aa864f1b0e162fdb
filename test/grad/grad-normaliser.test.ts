// SPEC §4: L = (1/N) Σ_g Σ_k L_{g,k} with N = Σ_g K_g, the batch's number of traces: every trace weighs 1/N, also
// where the groups of an `nrt grad` batch differ in size. Checked against nrt itself, without the oracle: a batch of
// one group g has loss ℓ_g = (1/K_g) Σ_k L_{g,k} (its A and rewards depend on that group alone), so the whole
// batch's loss and gradient must be Σ_g K_g ℓ_g / N — not the mean of the ℓ_g that dividing group g by G·K_g gives.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadModelDir } from "../../src/io/model-dir.js";
import { setThreads } from "../../src/model/native.js";
import { gradBatch, parseGradBatch } from "../../src/train/grad.js";
import { expectAllclose } from "../helpers/allclose.js";
import { makeBatch, writeModel } from "./_harness.js";

const dir = mkdtempSync(join(tmpdir(), "nrt-grad-norm-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
setThreads(1);

describe("nrt grad normalises by the number of traces N = Σ_g K_g", () => {
  const cfg = writeModel(join(dir, "m"), { numHeads: 2, numKvHeads: 2, numLayers: 1 }, 7);
  const { model } = loadModelDir(join(dir, "m"));
  const raw = makeBatch({ aggregation: "ws_nlog", advantage: "group_std" }, 3, 5, cfg.vocabSize, 41);
  const Ks = [2, 5, 3];
  for (const [j, g] of raw.groups.entries()) g.traces.splice(Ks[j]);
  const run = (groups: typeof raw.groups) => {
    const grads = model.zeros();
    const stats = gradBatch(model, parseGradBatch({ ...raw, groups }, cfg.vocabSize), grads);
    return { loss: stats.loss, grads: Float32Array.from(grads) };
  };
  const whole = run(raw.groups);
  const single = raw.groups.map((g) => run([g]));
  const N = Ks.reduce((a, k) => a + k, 0);

  it("the loss is Σ_g K_g ℓ_g / N", () => {
    const want = single.reduce((a, s, g) => a + Ks[g] * s.loss, 0) / N;
    const meanOfGroups = single.reduce((a, s) => a + s.loss, 0) / Ks.length; // the 1/(G·K_g) weighting
    expect(Math.abs(whole.loss - want)).toBeLessThan(1e-5 * Math.abs(want) + 1e-6);
    expect(Math.abs(meanOfGroups - want), "the case tells the two normalisers apart").toBeGreaterThan(1e-2);
  });

  it("and so is the gradient, element for element", () => {
    const want = new Float32Array(whole.grads.length);
    for (const [g, s] of single.entries()) for (let i = 0; i < want.length; i++) want[i] += (Ks[g] * s.grads[i]) / N;
    const scale = want.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    expectAllclose(whole.grads, want, { atol: 1e-5 * scale, rtol: 1e-4, what: "∂L/∂θ" });
  });
});
