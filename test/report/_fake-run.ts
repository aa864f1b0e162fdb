import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** mulberry32: a tiny seeded generator, so the fake runs (and the screenshot) are the same every time. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const jsonl = (rows: readonly object[]): string => rows.map((r) => `${JSON.stringify(r)}\n`).join("");

export interface FakeRun {
  method: string;
  steps: number;
  seed: number;
  /** how fast the curves improve */
  speed?: number;
  withEval?: boolean;
  withSamples?: boolean;
  withAlarms?: boolean;
}

/** Writes a run directory as `nrt train` would (metrics.jsonl, run_config.json, final/), by hand. */
export function writeFakeRun(dir: string, o: FakeRun): void {
  mkdirSync(join(dir, "final"), { recursive: true });
  const r = rng(o.seed);
  const noise = (s: number) => (r() - 0.5) * s;
  const speed = o.speed ?? 1;
  const rows = [];
  for (let step = 1; step <= o.steps; step++) {
    const p = 1 - Math.exp((-3 * speed * step) / o.steps); // progress 0 → ~1
    const base = { loss: 3 - 2 * p + noise(0.4), grad_norm: 2 + noise(1), lr: 3e-4, tokens_per_s: 4000 + noise(400) };
    if (o.method === "sft") {
      rows.push({ step, ...base, "time/update_ms": 50 + noise(5) });
      continue;
    }
    const nllEmpty = 2.2 - 0.3 * p + noise(0.1);
    const nllTrace = 2.3 - 1.5 * p + noise(0.2);
    rows.push({
      step,
      ...base,
      "reward/mean": 0.1 + 0.5 * p + noise(0.1),
      "reward/std": 0.05 + noise(0.02),
      "reward/prime_mean": 0.1 + 0.5 * p + noise(0.1),
      "adv/zero_std_frac": Math.max(0, 0.6 - 0.5 * p + noise(0.1)),
      "trace/len_mean": 4 + 10 * p + noise(2),
      "trace/rate": Math.min(1, 0.5 + 0.5 * p + noise(0.05)),
      "trace/truncated_rate": Math.max(0, 0.7 - 0.6 * p + noise(0.1)),
      "trace/emitted_rate": Math.min(1, 0.3 + 0.6 * p + noise(0.05)),
      "trace/entropy": 2.5 - 1.2 * p + noise(0.2),
      "answer/nll_trace": nllTrace,
      "answer/nll_empty": nllEmpty,
      "answer/c_mean": Math.exp(-nllTrace),
      "answer/b_mean": Math.exp(-nllEmpty),
      "loss/trace": -0.2 + noise(0.2),
      "loss/answer": 2.5 - 1.5 * p + noise(0.2),
      "loss/format": 0.5 * (1 - p) + noise(0.05),
      "time/rollout_ms": 100 + noise(10),
      "time/step_ms": 200 + noise(20),
    });
  }
  writeFileSync(join(dir, "metrics.jsonl"), jsonl(rows));
  const train = { model: "models/chain2-base", out: dir, method: o.method, steps: o.steps, lr: 3e-4, seed: o.seed };
  writeFileSync(join(dir, "run_config.json"), JSON.stringify({ train, versions: { nrt: "0.1.0" } }));
  if (o.withAlarms)
    writeFileSync(
      join(dir, "alarms.jsonl"),
      jsonl([1, 2, 5].map((step) => ({ step, name: "truncation", message: "70% of traces hit the trace limit" }))),
    );
  if (o.withSamples) {
    const samples = [1, o.steps].flatMap((step) =>
      [0, 1].map((i) => ({
        step,
        question: `a=${i + 2}; b=a+3; c=b*2. c=?`,
        trace: step === 1 ? "a is 2 so <b>" : `a=${i + 2}, b=${i + 5}, c=${2 * (i + 5)}`,
        answer: String(2 * (i + 5)),
        reference: String(2 * (i + 5)),
        reward: step === 1 ? 0.12 : 0.81,
      })),
    );
    writeFileSync(join(dir, "samples.jsonl"), jsonl(samples));
  }
  if (o.withEval) {
    const byK = (k: number) => ({ n: 50, accuracy: 0.9 - 0.1 * k + o.seed * 0.01, accuracy_direct: 0.7 - 0.12 * k });
    const ev = {
      n: 200,
      accuracy: 0.55,
      accuracy_sampled: 0.5,
      accuracy_direct: 0.3,
      accuracy_forced: 0.52,
      trace_rate: 0.95,
      trace_len_mean: 12.5,
      trace_entropy: 0.8,
      decision_entropy: 0.2,
      hard_tokens: [],
      by_k: { "3": byK(3), "4": byK(4), "5": byK(5), "6": byK(6) },
      samples: [{ question: "x=1. x=?", reference: "1", trace: "x is 1", predicted: "1", correct: true }],
    };
    writeFileSync(join(dir, "eval.json"), JSON.stringify(ev));
  }
}
