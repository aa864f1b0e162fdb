import { Model } from "../../dist/model/model.js";
import { llamaConfig } from "../../dist/model/config.js";
import { native } from "../../dist/model/native.js";
const [V, C, L, H, F, B, T, thr] = process.argv.slice(2).map(Number);
native().setThreads(thr);
const m = Model.init(llamaConfig({ vocabSize: V, hiddenSize: C, numLayers: L, numHeads: H, numKvHeads: H, intermediateSize: F }), 1);
const toks = new Int32Array(B * T).map((_, i) => (i * 7919) % V);
const lens = new Int32Array(B).fill(T);
const w = new Float32Array(B * T).fill(1 / (B * T));
const g = m.zeros(), mm = m.zeros(), vv = m.zeros();
const times = { f: [], b: [], o: [] };
for (let it = 0; it < 30; it++) {
  let t0 = performance.now();
  m.engine.forward(toks, lens);
  let t1 = performance.now();
  g.fill(0);
  m.engine.backward(w, g);
  let t2 = performance.now();
  native().adamw(m.config, m.params, g, mm, vv, { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01, clip: 1, step: it + 1 });
  let t3 = performance.now();
  if (it >= 5) { times.f.push(t1 - t0); times.b.push(t2 - t1); times.o.push(t3 - t2); }
}
const med = (a) => a.sort((x, y) => x - y)[a.length >> 1];
console.log(`params ${m.numParams} fwd ${med(times.f).toFixed(1)} bwd ${med(times.b).toFixed(1)} opt ${med(times.o).toFixed(1)} ms`);
