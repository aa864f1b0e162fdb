// `nrt chat` through bin/nrt.js with piped stdin (the compiled dist/, rebuilt when older than the sources it covers).

import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { promptIds } from "../../src/data/format.js";
import { loadModel } from "../../src/io/load.js";
import { saveModelDir } from "../../src/io/model-dir.js";
import { llamaConfig } from "../../src/model/config.js";
import { Model } from "../../src/model/model.js";
import { reply } from "../../src/rollout/reply.js";
import { CHAR_IDS, CHAR_VOCAB_SIZE, charTokenizerJson } from "../../src/tokenizer/char-tokenizer-json.js";
import { ensureBuilt as ensureBuiltFor } from "../helpers/ensure-built.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

function ensureBuilt(): void {
  ensureBuiltFor("src/cli/commands/chat.ts");
}

/** A tiny random model with the SPEC §7 char tokenizer (and extra files, e.g. a tokenizer_config.json). */
function modelDir(extra: Record<string, string> = {}): string {
  const dir = join(mkdtempSync(join(tmpdir(), "nrt-chat-")), "model");
  const cfg = llamaConfig({
    vocabSize: CHAR_VOCAB_SIZE,
    hiddenSize: 32,
    numLayers: 1,
    numHeads: 2,
    numKvHeads: 1,
    intermediateSize: 64,
    bosTokenId: CHAR_IDS.bos,
    eosTokenId: CHAR_IDS.eos,
    answerStartTokenId: CHAR_IDS.answerStart,
  });
  saveModelDir(dir, Model.init(cfg, 3, 0.5), { "tokenizer.json": JSON.stringify(charTokenizerJson()), ...extra });
  return dir;
}

const FLAGS = ["--threads", "1", "--max-trace-tokens", "8", "--max-new-tokens", "6"];
const OPTS = { temperature: 0, topP: 1, topK: 0, maxTraceTokens: 8, maxNewTokens: 6 };

function chat(dir: string, input: string, flags: string[] = []) {
  return spawnSync(process.execPath, [join(ROOT, "bin/nrt.js"), "chat", dir, ...FLAGS, ...flags], {
    cwd: ROOT,
    encoding: "utf8",
    input,
  });
}

describe("nrt chat", () => {
  beforeAll(ensureBuilt);

  it("piped: a trace and an answer per line, as reply() gives them; errors go to stderr; exits on EOF", () => {
    const dir = modelDir();
    const r = chat(dir, "a1,b+2;b\n\nXY\na3,b*2;b\n");
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines.pop()).toBe("");
    expect(lines).toHaveLength(4);
    expect(r.stdout).not.toContain("\x1b["); // no ANSI codes when stdout is not a terminal
    expect(r.stderr).toMatch(/error: cannot encode "XY"/);
    const loaded = loadModel(dir);
    ["a1,b+2;b", "a3,b*2;b"].forEach((q, i) => {
      const want = reply(loaded, q, { ...OPTS, seed: 2 * i });
      expect(lines[2 * i]).toBe(`trace: ${want.trace}`);
      expect(lines[2 * i + 1]).toBe(`answer: ${want.answer}`);
      expect(want.traceTokens.length + want.answerTokens.length).toBeGreaterThan(0);
    });
  });

  it("renders each line with the model's chat template", () => {
    const template = "{{ bos_token }}{% for m in messages %}{{ m['content'] + ';' + m['content'] }}{% endfor %}";
    const dir = modelDir({ "tokenizer_config.json": JSON.stringify({ chat_template: template }) });
    const loaded = loadModel(dir);
    const tok = loaded.tokenizer;
    expect(promptIds(tok, loaded.chatTemplate, { question: "a1" })).toEqual([CHAR_IDS.bos, ...tok.encode("a1;a1")]);
    const seeds = ["a1", "b2", "c3"];
    const r = chat(dir, `${seeds.join("\n")}\n`, ["--temperature", "1", "--seed", "5"]);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(6);
    seeds.forEach((q, i) => {
      const want = reply(loaded, q, { ...OPTS, temperature: 1, seed: 5 + 2 * i });
      expect(lines.slice(2 * i, 2 * i + 2)).toEqual([`trace: ${want.trace}`, `answer: ${want.answer}`]);
    });
  });
});
