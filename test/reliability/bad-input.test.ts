/**
 * Issue 9, list 1: `nrt train` refuses bad input before the first step, with a message naming the place
 * (file:line, key or tensor), exit code 2, no stack trace, and nothing written: no run directory is created and an
 * existing one is left byte for byte as it was.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readSafetensors, writeSafetensors } from "../../src/io/safetensors.js";
import { nrt, QA_LINES, STACK, scratch, setup, snapshot, TINY_FLAGS, trainRefused } from "./_setup.js";

const s = setup("nrt-bad-");
afterAll(() => rmSync(s.dir, { recursive: true, force: true }));

const { dataFile, modelCopy, fresh } = scratch(s);

/** Runs `nrt train` into a fresh --out and expects a refusal: exit 2, a message matching `where`, no run dir. */
function refused(args: { model?: string; data?: string; extra?: string[] }, ...where: (string | RegExp)[]): string {
  return trainRefused(s, fresh("run"), args, ...where);
}

describe("bad data is refused with file:line before anything is written", () => {
  it("malformed JSON", () => {
    const d = dataFile([QA_LINES[0], '{"question": "a1,b+2;b", "answer": ', QA_LINES[1]]);
    refused({ data: d }, `${d}:2: malformed JSON`);
  });

  it('missing or non-string "question"', () => {
    const d = dataFile([QA_LINES[0], '{"answer": "b=3"}', '{"question": 7, "answer": "b=3"}']);
    refused({ data: d }, `${d}:2: "question" must be a string`, `${d}:3: "question" must be a string`);
  });

  it('missing or non-string "answer"', () => {
    const d = dataFile(['{"question": "a1,b+2;b"}', '{"question": "a1,b+2;b", "answer": null}', QA_LINES[0]]);
    refused({ data: d }, `${d}:1: "answer" must be a string`, `${d}:2: "answer" must be a string`);
  });

  it("empty answer", () => {
    const d = dataFile([QA_LINES[0], QA_LINES[1], '{"question": "a1,b+2;b", "answer": ""}']);
    refused({ data: d }, `${d}:3: empty answer`);
  });

  it("a chat record without an assistant turn", () => {
    const chat = { messages: [{ role: "user", content: "a1,b+2;b" }] };
    const d = dataFile([JSON.stringify(chat), QA_LINES[0]]);
    refused({ data: d }, `${d}:1: chat record has no assistant turn`);
  });

  it("a line that is not an object, and a chat turn without string content", () => {
    const bad = { messages: [{ role: "user", content: "q" }, { role: "assistant" }] };
    const d = dataFile(["[1, 2]", JSON.stringify(bad), QA_LINES[0]]);
    refused({ data: d }, `${d}:1: not a JSON object`, `${d}:2: messages[1] needs string "role" and "content"`);
  });

  it("invalid UTF-8", () => {
    const good = Buffer.from(`${QA_LINES[0]}\n${QA_LINES[1]}\n`);
    const bad = Buffer.concat([good, Buffer.from('{"question": "a1,b+2;b", "answer": "b='), Buffer.from([0xc3, 0x28])]);
    const d = dataFile(Buffer.concat([bad, Buffer.from('"}\n')]));
    refused({ data: d }, `${d}:3: invalid UTF-8`);
  });

  it("a prompt and answer longer than the model's context", () => {
    // context 256 positions, less --max-trace-tokens 8: 248 for ⟨bos⟩ prompt ⟨answer_start⟩ answer ⟨eos⟩
    const long = JSON.stringify({ question: "a1,b+2;b", answer: "b".repeat(300) });
    const d = dataFile([QA_LINES[0], QA_LINES[1], long]);
    refused({ data: d }, new RegExp(`${d}:3: prompt and answer take \\d+ tokens, more than the model's context`));
  });

  it("every problem of the file is reported at once, with its line", () => {
    const d = dataFile(["{", QA_LINES[0], '{"question": "q", "answer": ""}', "", "nope", QA_LINES[1]]);
    const err = refused({ data: d }, "3 invalid record(s)", `${d}:1:`, `${d}:3:`, `${d}:5:`);
    expect(err).not.toMatch(`${d}:2:`);
    expect(err).toMatch("--skip-invalid");
  });

  it("a missing or empty data file", () => {
    refused({ data: join(s.dir, "nope.jsonl") }, "nope.jsonl: cannot read data file (ENOENT)");
    refused({ data: dataFile(["", "  "]) }, "no records");
  });
});

describe("warnings that let the run go on", () => {
  it("duplicate records are reported, not refused", () => {
    const d = dataFile([...QA_LINES, QA_LINES[2], QA_LINES[2]]);
    const out = join(s.dir, "dup-run");
    const r = nrt(["train", "--model", s.model, "--data", d, "--out", out, "--steps", "1", ...TINY_FLAGS]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(`warning: ${d}: 2 duplicate record(s)`);
  });

  it("--skip-invalid turns errors into a counted warning", () => {
    const d = dataFile(["{", ...QA_LINES, '{"question": "q", "answer": ""}']);
    const out = join(s.dir, "skip-run");
    const args = ["train", "--model", s.model, "--data", d, "--out", out, "--steps", "1", ...TINY_FLAGS];
    const r = nrt([...args, "--skip-invalid", "true"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(`warning: ${d}: skipped 2 invalid record(s)`);
    expect(readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n")).toHaveLength(1);
  });
});

describe("a bad model directory is refused naming the file and the tensor", () => {
  const weights = (dir: string) => join(dir, "model.safetensors");
  /** Rewrites the model's tensors through `edit`. */
  const editTensors =
    (edit: (ts: { name: string; shape: number[]; data: Float32Array }[]) => void) => (dir: string) => {
      const ts = [...readSafetensors(weights(dir)).tensors.entries()].map(([name, t]) => ({
        name,
        shape: [...t.shape],
        data: t.data,
      }));
      edit(ts);
      writeSafetensors(weights(dir), ts);
    };

  it("a missing model.safetensors, config.json or tokenizer.json", () => {
    refused({ model: modelCopy((d) => rmSync(weights(d))) }, /model\.safetensors: missing model\.safetensors/);
    refused({ model: modelCopy((d) => rmSync(join(d, "config.json"))) }, /no config\.json.*not a model or run/);
    refused({ model: modelCopy((d) => rmSync(join(d, "tokenizer.json"))) }, /tokenizer\.json: missing tokenizer\.json/);
    refused({ model: join(s.dir, "no-such-model") }, /no-such-model: does not exist/);
  });

  it("a tensor whose shape does not match config.json", () => {
    const name = "model.layers.1.mlp.up_proj.weight";
    const m = modelCopy(
      editTensors((ts) => {
        const t = ts.find((x) => x.name === name)!;
        t.shape = [t.shape[1], t.shape[0]];
      }),
    );
    refused({ model: m }, `model.safetensors: ${name}: expected shape [64, 32], found [32, 64]`);
  });

  it("a config.json that does not match the tensors (a layer more than the file holds)", () => {
    const m = modelCopy((d) => {
      const c = JSON.parse(readFileSync(join(d, "config.json"), "utf8"));
      writeFileSync(join(d, "config.json"), JSON.stringify({ ...c, num_hidden_layers: 3 }));
    });
    refused({ model: m }, /model\.safetensors: model\.layers\.2\.[\w.]+: missing tensor/);
  });

  it("a tensor the config does not have, and a tensor of an unsupported dtype", () => {
    const extra = modelCopy(
      editTensors((ts) => ts.push({ name: "model.bias", shape: [2], data: new Float32Array(2) })),
    );
    refused({ model: extra }, "model.safetensors: model.bias: unexpected tensor");
    const i32 = modelCopy((d) => {
      const b = readFileSync(weights(d));
      const at = b.indexOf('"F32"');
      b.write('"I32"', at); // same length: the header stays valid JSON of the same size
      writeFileSync(weights(d), b);
    });
    refused({ model: i32 }, /model\.safetensors.*unsupported dtype "I32"/);
  });

  it("a truncated safetensors file", () => {
    const m = modelCopy((d) => {
      const b = readFileSync(weights(d));
      writeFileSync(weights(d), b.subarray(0, b.length - 100));
    });
    refused({ model: m }, /model\.safetensors/);
    const h = modelCopy((d) => writeFileSync(weights(d), readFileSync(weights(d)).subarray(0, 20)));
    refused({ model: h }, /model\.safetensors/);
  });

  it("non-finite weights", () => {
    const name = "model.layers.0.self_attn.q_proj.weight";
    const m = modelCopy(
      editTensors((ts) => {
        ts.find((x) => x.name === name)!.data[5] = Number.NaN;
      }),
    );
    refused({ model: m }, `model.safetensors: ${name}: element 5 is NaN (weights must be finite)`);
  });
});

describe("bad settings are refused naming the key", () => {
  it("an unknown key or a bad value in --config, and a bad flag value", () => {
    const yaml = join(s.dir, "bad-key.yaml");
    writeFileSync(yaml, "method: nrt-ws\ngroup_sise: 8\n");
    refused({ extra: ["--config", yaml] }, `${yaml}: unknown key "group_sise"`);
    const val = join(s.dir, "bad-value.json");
    writeFileSync(val, JSON.stringify({ keep_checkpoints: 0 }));
    refused({ extra: ["--config", val] }, `${val}: keep_checkpoints = 0 is invalid`);
    const broken = join(s.dir, "broken.yaml");
    writeFileSync(broken, "steps: [1,\n");
    refused({ extra: ["--config", broken] }, `${broken}: not valid YAML`);
    refused({ extra: ["--group-size", "0"] }, /flags: group_size = 0 is invalid/);
  });
});

describe("a refused --resume leaves the run directory untouched", () => {
  let run: string;
  let before: Record<string, string>;
  beforeAll(() => {
    run = join(s.dir, "existing");
    const d = join(s.dir, "resumed-data.jsonl");
    writeFileSync(d, `${QA_LINES.join("\n")}\n`);
    const r = nrt(["train", "--model", s.model, "--data", d, "--out", run, "--steps", "3", ...TINY_FLAGS]);
    expect(r.status, r.stderr).toBe(0);
    before = snapshot(run);
    // the data file is then broken, after the run
    writeFileSync(d, `${QA_LINES[0]}\n{"question": "q"}\n`);
  });

  it("data that became invalid, a changed setting, a shrinking step count", () => {
    for (const [extra, where] of [
      [["--steps", "5"], /resumed-data\.jsonl:2: "answer" must be a string/],
      [["--steps", "5", "--lr", "1"], /--resume: lr was 0\.003 in this run, now 1/],
      [["--steps", "2"], /--resume: steps may only grow/],
    ] as const) {
      const r = nrt(["train", "--resume", run, ...extra]);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(where);
      expect(r.stderr).not.toMatch(STACK);
      expect(snapshot(run)).toEqual(before);
    }
  });

  it("--out onto an existing run without --resume", () => {
    const r = nrt(["train", "--model", s.model, "--data", s.data, "--out", run, ...TINY_FLAGS]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(`${run}: already holds a run (use --resume`);
    expect(snapshot(run)).toEqual(before);
  });

  it("--resume of a directory that is not a run", () => {
    const empty = join(s.dir, "not-a-run");
    mkdirSync(empty);
    const r = nrt(["train", "--resume", empty]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/not-a-run: holds no run_config\.json, so there is nothing to resume/);
    expect(snapshot(empty)).toEqual({});
  });
});
