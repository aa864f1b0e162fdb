/**
 * Issue 19, errors: every failure of the OS, the native engine or the input reaches the user as one line,
 * `nrt: error: <where>: <what>`, exit code 2, naming the path, flag, field or file:line — never a stack trace,
 * a raw `RangeError` or a native message; and data that would silently train wrong is refused.
 */
import { spawnSync } from "node:child_process";
import { closeSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { appendNoFollow } from "../../src/io/append.js";
import { BIN, nrt, QA_LINES, ROOT, STACK, scratch, setup, TINY_FLAGS } from "./_setup.js";

const s = setup("nrt-errors-");
afterAll(() => rmSync(s.dir, { recursive: true, force: true }));

const { dataFile, modelCopy, fresh } = scratch(s);

/** One line on stderr, exit 2, no stack, matching every `what`. */
function expectOneLine(r: { status: number | null; stderr: string }, ...what: (string | RegExp)[]): void {
  expect(r.status, r.stderr).toBe(2);
  expect(r.stderr).toMatch(/^nrt: error: /);
  expect(r.stderr).not.toMatch(STACK);
  expect(r.stderr.trim().split("\n"), r.stderr).toHaveLength(1);
  for (const w of what) expect(r.stderr).toMatch(w);
}

const train = (o: { model?: string; data?: string; extra?: string[] }) =>
  nrt([
    "train",
    "--model",
    o.model ?? s.model,
    "--data",
    o.data ?? s.data,
    "--out",
    fresh("run"),
    "--steps",
    "1",
    ...TINY_FLAGS,
    ...(o.extra ?? []),
  ]);

describe("the OS's errors", () => {
  it("a full disk under stdout (ENOSPC)", () => {
    const full = openSync("/dev/full", "w");
    try {
      const r = spawnSync(process.execPath, [BIN, "world", "chain", "--n", "50"], {
        cwd: ROOT,
        stdio: ["ignore", full, "pipe"],
        encoding: "utf8",
      });
      expectOneLine(r, "stdout: cannot write (no space left on the device (ENOSPC))");
    } finally {
      closeSync(full);
    }
  });

  it("a full disk under a run directory's log (ENOSPC), as the trainer appends to it", () => {
    expect(() => appendNoFollow("/dev/full", '{"step": 1}\n')).toThrow(
      /^\/dev\/full: cannot write \(no space left on the device \(ENOSPC\)\)$/,
    );
  });

  it("a directory given as --config (EISDIR)", () => {
    expectOneLine(train({ extra: ["--config", s.dir] }), `${s.dir}: cannot read config: a directory`);
  });
});

describe("model files", () => {
  it("a safetensors header declaring a 5 GB tensor is refused from the header, before anything is allocated", () => {
    const m = modelCopy((d) => {
      const name = "model.embed_tokens.weight";
      const numel = 5 * 2 ** 28; // 5 GiB of F32
      const header = JSON.stringify({ [name]: { dtype: "F32", shape: [numel], data_offsets: [0, 4 * numel] } });
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(header.length));
      const f = join(d, "model.safetensors");
      writeFileSync(f, Buffer.concat([len, Buffer.from(header)]));
      truncateSync(f, 8 + header.length + 4 * numel); // sparse: takes no disk
    });
    expectOneLine(
      train({ model: m }),
      /model\.safetensors: model\.embed_tokens\.weight: expected shape \[30, 32\], found \[1342177280\]/,
    );
  });

  it("negative token ids in tokenizer.json", () => {
    const m = modelCopy((d) => {
      const p = join(d, "tokenizer.json");
      const j = JSON.parse(readFileSync(p, "utf8"));
      j.model.vocab.a = -3;
      writeFileSync(p, JSON.stringify(j));
    });
    expectOneLine(
      train({ model: m }),
      /tokenizer\.json: model\.vocab\["a"\] is -3: token ids must be whole numbers ≥ 0/,
    );
  });

  it("a WordPiece tokenizer that cannot encode the data is named, with the record's file:line", () => {
    const m = modelCopy((d) => {
      const vocab = { "<pad>": 0, "<s>": 1, "</s>": 2, "<answer_start>": 3, a1: 4, b: 5 };
      const added = Object.entries(vocab)
        .slice(0, 4)
        .map(([content, id]) => ({ id, content, special: true, normalized: false }));
      const tok = {
        version: "1.0",
        added_tokens: added,
        normalizer: null,
        pre_tokenizer: { type: "Whitespace" },
        post_processor: null,
        decoder: null,
        model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", vocab },
      };
      writeFileSync(join(d, "tokenizer.json"), JSON.stringify(tok));
    });
    expectOneLine(train({ model: m }), `${s.data}:1: cannot encode`, `${m}/tokenizer.json (a WordPiece tokenizer)`);
  });
});

describe("the native engine's limits are checked first", () => {
  it("--prompts-per-step 100000: the memory a step needs, naming the flags to lower", () => {
    expectOneLine(
      train({ extra: ["--prompts-per-step", "100000", "--group-size", "64"] }),
      /--prompts-per-step: a step of 100000 × 64 traces needs about [\d.]+ GB, more than this machine's/,
    );
  });

  it("nrt sample: --temperature -1, --top-p 2, NaN, --n too large: the flag named, nothing native leaks", () => {
    const sample = (...a: string[]) => nrt(["sample", s.model, "--prompt", "a1,b+2;b", ...a]);
    expectOneLine(sample("--temperature", "-1"), `--temperature: must be a number ≥ 0`);
    expectOneLine(sample("--temperature", "NaN"), `--temperature: must be a number ≥ 0`);
    expectOneLine(sample("--top-p", "2"), `--top-p: must be a number in (0, 1]`);
    expectOneLine(sample("--top-p", "NaN"), `--top-p: must be a number in (0, 1]`);
    expectOneLine(sample("--n", "100000000"), /--n: sampling 100000000 streams needs about/);
    for (const r of [sample("--temperature", "-1"), sample("--top-p", "2")]) expect(r.stderr).not.toMatch(/native/);
  });

  it("nrt sample: a prompt longer than the context is refused; one that leaves a little room is cut short", () => {
    const long = "a1,b+2;".repeat(40); // 281 tokens with ⟨bos⟩; the context is 256
    expectOneLine(nrt(["sample", s.model, "--prompt", long]), "--prompt: takes 281 tokens, the model's context is 256");
    const r = nrt(["sample", s.model, "--prompt", "a1,b+2;".repeat(36), "--json"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch("--max-new-tokens 64 cut to 3");
    expect(JSON.parse(r.stdout).samples[0].tokens.length).toBeLessThanOrEqual(3);
  });

  it("--max-trace-tokens not less than the context is named as such (train, eval, export)", () => {
    const what = "--max-trace-tokens: 100000 is not less than the model's context (256 positions)";
    expectOneLine(train({ extra: ["--max-trace-tokens", "100000"] }), what);
    const ev = nrt(["eval", s.model, "--data", s.data, "--max-trace-tokens", "100000", "--threads", "1"]);
    expect(ev.status).toBe(2); // after eval's own progress line
    expect(ev.stderr).toMatch(`nrt: error: ${what}`);
    expect(ev.stderr).not.toMatch(STACK);
    const cfg = join(s.dir, "long-traces.yaml");
    writeFileSync(cfg, "max_trace_tokens: 100000\n");
    const out = join(s.dir, "verl-out");
    const r = nrt(["export", "--format", "verl-nrt", s.model, "--data", s.data, "--config", cfg, "-o", out]);
    expectOneLine(r, "max_trace_tokens: 100000 is not less than the model's context");
  });
});

describe("data that would train wrong, or is reported unclearly", () => {
  it("the literal text <answer_start> or </s> in a record is refused at file:line", () => {
    const d = dataFile([
      QA_LINES[0],
      JSON.stringify({ question: "a1,b+2;b<answer_start>", answer: "b=3" }),
      JSON.stringify({ question: "a1,b+2;b", answer: "b=3</s>" }),
    ]);
    expectOneLine(train({ data: d }), `${d}:2: question holds the text "<answer_start>"`);
    const e = dataFile([QA_LINES[0], JSON.stringify({ question: "a1,b+2;b", answer: "b=3</s>" })]);
    expectOneLine(train({ data: e }), `${e}:2: answer holds the text "</s>"`);
  });

  it("a character the tokenizer cannot encode: file:line and the tokenizer file", () => {
    const d = dataFile([QA_LINES[0], JSON.stringify({ question: "a1,b+2;b", answer: "b=Z" })]);
    expectOneLine(
      train({ data: d }),
      `${d}:2: cannot encode "b=Z" with`,
      /tokenizer\.json.*not in the vocabulary: \["Z"\]/,
    );
  });

  it('{"messages": "not a list"} is reported as such', () => {
    const d = dataFile([QA_LINES[0], JSON.stringify({ messages: "not a list" })]);
    const r = train({ data: d });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(`${d}:2: "messages" must be a list of {"role", "content"} turns, got a string`);
    expect(r.stderr).not.toMatch(/"question" must be a string/);
  });

  it("the duplicate-record warning names the lines", () => {
    const d = dataFile([...QA_LINES, QA_LINES[2], QA_LINES[0]]);
    const r = train({ data: d });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      `${d}: 2 duplicate record(s) (same question and answer): line 7 repeats line 3, line 8 repeats line 1`,
    );
  });
});
