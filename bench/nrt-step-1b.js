// `node bench/nrt-step-1b.js [--json] [--threads T] [--rank R] [--micro-batch-tokens N]`: the `train_rss_1b_lora`
// line of issue 18. One LoRA NRT step of `nrt train` at the Llama-3.2-1B shape, in a fresh process, with its peak
// resident memory and its phase split.
//
// The model: Llama-3.2-1B's config.json (vocab 128,256, hidden 2048, 16 layers, 32 heads, 8 KV heads, intermediate
// 8192, tied embeddings, rope_theta 500000 with llama3 scaling), random weights (uniform, std 0.02), stored as
// bfloat16 as the real checkpoint is (2.5 GB). The tokenizer is the committed Llama-3 fixture (test/fixtures/
// tokenizers/llama3, 2,000 ids + ⟨bos⟩ ⟨eos⟩): the vocabulary is padded past it, as Qwen2.5's is, so ⟨answer_start⟩
// takes padding row 2002 and the matrices keep the real model's shapes.
// The step: `nrt train --lora-rank 16 --prompts-per-step 8 --group-size 8 --max-trace-tokens 128 --steps 1` on
// eight short questions (a random model rarely emits a special token, so traces run to the limit), through the
// trainer itself (loading, ⟨answer_start⟩, the memory check, sampling, scoring, micro-batched update, final/).
// Peak RSS is the child's ru_maxrss. There is no outside peer for this line: "peer" is the budget,
// 12 GB (12,288 MB), so ratio ≤ 1 means within it. The phase split goes to stderr (and into the JSON line's
// extra fields).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const BUDGET_MB = 12 * 1024;
const CONFIG = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  vocab_size: 128256,
  hidden_size: 2048,
  intermediate_size: 8192,
  num_hidden_layers: 16,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  head_dim: 64,
  rms_norm_eps: 1e-5,
  rope_theta: 500000,
  rope_scaling: {
    rope_type: "llama3",
    factor: 32,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 8192,
  },
  max_position_embeddings: 131072,
  tie_word_embeddings: true,
  hidden_act: "silu",
  bos_token_id: 2000,
  eos_token_id: 2001,
  torch_dtype: "bfloat16",
};

const argv = process.argv.slice(2);
const opt = (flag, def) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : def);
const json = argv.includes("--json");
const log = (s) => process.stderr.write(`${s}\n`);
const here = (f) => fileURLToPath(new URL(f, import.meta.url));

if (argv[0] === "--child") await child(argv[1], argv.slice(2));
else if (argv[0] === "--write") process.stdout.write(`${await writeModel(argv[1])}\n`);
else await parent();

/** Writes the model directory and data, runs the step in a child, prints the line. */
async function parent() {
  const threads = opt("--threads", "2");
  const dir = mkdtempSync(join(tmpdir(), "nrt-1b-"));
  try {
    const t0 = performance.now();
    // in a process of its own, so that this one holds none of the model while the step runs
    const w = spawnSync(process.execPath, [here("./nrt-step-1b.js"), "--write", join(dir, "model")], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    });
    if (w.status !== 0) throw new Error(`writing the model failed (exit ${w.status ?? w.signal})`);
    const params = Number(w.stdout.trim());
    const qa = ["a1,b+2;b", "a3,b*2;b", "a5,b+1;b", "a2,b*3;b", "a7,b+3;b", "a4,b+4;b", "a6,b+2;b", "a8,b*1;b"];
    writeFileSync(
      join(dir, "qa.jsonl"),
      qa.map((q) => JSON.stringify({ question: q, answer: `b=${(Number(q[1]) + Number(q[5])) % 10}` })).join("\n"),
    );
    log(`nrt-step-1b: wrote the model (bf16) in ${((performance.now() - t0) / 1000).toFixed(0)} s; running the step…`);
    const extra = [
      "--threads",
      threads,
      "--rank",
      opt("--rank", "16"),
      "--micro-batch-tokens",
      opt("--micro-batch-tokens", "0"),
    ];
    const r = spawnSync(process.execPath, [here("./nrt-step-1b.js"), "--child", dir, ...extra], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, OMP_WAIT_POLICY: "passive" },
    });
    if (r.status !== 0) throw new Error(`the step failed (exit ${r.status ?? r.signal})`);
    const res = JSON.parse(r.stdout);
    res.params = params;
    // the adapter's float32 tensors: the file less its 8-byte length and JSON header
    const file = readFileSync(join(dir, "run", "final", "adapter_model.safetensors"));
    res.trainable = (file.length - 8 - Number(file.readBigUInt64LE(0))) / 4;
    const m = res.metrics;
    log(
      `train_rss_1b_lora: peak RSS ${res.maxrss_mb.toFixed(0)} MB (budget ${BUDGET_MB}); after loading ${res.rss_loaded_mb.toFixed(0)} MB; ` +
        `${res.params} base parameters, ${res.trainable} adapter parameters (r ${res.rank}); threads ${threads}; load average ${loadavg()[0].toFixed(1)}`,
    );
    log(
      `  NRT step ${(m["time/step_ms"] / 1000).toFixed(1)} s: rollout ${(m["time/rollout_ms"] / 1000).toFixed(1)} s, ` +
        `scoring ${(m["time/score_ms"] / 1000).toFixed(1)} s, update ${(m["time/update_ms"] / 1000).toFixed(1)} s; ` +
        `${res.traceTokens} trace tokens, ${res.scoredTokens} scored tokens`,
    );
    if (json)
      process.stdout.write(
        `${JSON.stringify({
          name: "train_rss_1b_lora",
          nrt: Math.round(res.maxrss_mb),
          peer: BUDGET_MB,
          unit: "MB",
          ratio: +(res.maxrss_mb / BUDGET_MB).toFixed(3),
          step_ms: Math.round(m["time/step_ms"]),
          rollout_ms: Math.round(m["time/rollout_ms"]),
          score_ms: Math.round(m["time/score_ms"]),
          update_ms: Math.round(m["time/update_ms"]),
        })}\n`,
      );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** config.json, a bf16 model.safetensors of random weights, and the Llama-3 fixture tokenizer with its specials. */
async function writeModel(dir) {
  const { parseHfConfig } = await import("../dist/io/hf-config.js");
  const { Model } = await import("../dist/model/model.js");
  const { saveModelDir } = await import("../dist/io/model-dir.js");
  const model = new Model(parseHfConfig(CONFIG, "bench 1B config"));
  // xorshift uniform in ±√3·0.02 (std 0.02) for matrices, 1 for norm weights: cheap, deterministic
  let s = 0x9e3779b9 | 0;
  const a = 0.02 * Math.sqrt(3);
  for (const p of model.table) {
    const v = model.view(p.name);
    if (p.shape.length === 1) v.fill(1);
    else
      for (let i = 0; i < v.length; i++) {
        s ^= s << 13;
        s ^= s >>> 17;
        s ^= s << 5;
        v[i] = ((s >>> 0) / 4294967296 - 0.5) * 2 * a;
      }
  }
  const tok = JSON.parse(readFileSync(here("../test/fixtures/tokenizers/llama3/tokenizer.json"), "utf8"));
  const special = (id, content) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  tok.added_tokens = [special(2000, "<|begin_of_text|>"), special(2001, "<|end_of_text|>")];
  saveModelDir(dir, model, { "tokenizer.json": JSON.stringify(tok) }, { dtype: "BF16" });
  return model.numParams;
}

/** The measured process: one `nrt train` step, then its peak RSS and metrics on stdout. */
async function child(dir, args) {
  const a = (flag) => args[args.indexOf(flag) + 1];
  const { resolveFields } = await import("../dist/config/schema.js");
  const { trainFields } = await import("../dist/config/train-config.js");
  const { trainAsync } = await import("../dist/train/trainer.js");
  const cfg = resolveFields(
    trainFields,
    undefined,
    {
      model: join(dir, "model"),
      data: join(dir, "qa.jsonl"),
      out: join(dir, "run"),
      steps: 1,
      promptsPerStep: 8,
      groupSize: 8,
      maxTraceTokens: 128,
      loraRank: Number(a("--rank")),
      microBatchTokens: Number(a("--micro-batch-tokens")),
      threads: Number(a("--threads")),
      progress: false,
    },
    "bench",
  );
  let rssLoaded = 0;
  let info = {};
  const r = await trainAsync(cfg, {
    onStarted: () => {
      rssLoaded = process.memoryUsage.rss() / 1024 / 1024;
    },
    onStep: (m) => {
      info = m;
    },
  });
  const trainLine = JSON.parse(readFileSync(join(r.outDir, "metrics.jsonl"), "utf8").trim().split("\n")[0]);
  process.stdout.write(
    `${JSON.stringify({
      maxrss_mb: process.resourceUsage().maxRSS / 1024,
      rss_loaded_mb: rssLoaded,
      rank: cfg.loraRank,
      metrics: { ...trainLine, ...info },
      traceTokens: Math.round((trainLine["trace/len_mean"] ?? 0) * 64),
      scoredTokens: trainLine.tokens_per_s
        ? Math.round((trainLine.tokens_per_s * trainLine["time/step_ms"]) / 1000)
        : 0,
    })}\n`,
  );
}
