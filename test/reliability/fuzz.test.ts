/**
 * Issue 9: random and mutated bytes fed to the readers a user's files reach: the QA JSON Lines reader and the
 * `nrt train --config` / `--resume` config readers. Each either parses or refuses with our error and a message,
 * never crashes with anything else and never hangs (the vitest timeout). test/io/fuzz.test.ts does the same for
 * safetensors and config.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { readConfigFile, resolveTrainConfig } from "../../src/cli/commands/train.js";
import { resolveFields } from "../../src/config/schema.js";
import { trainFields } from "../../src/config/train-config.js";
import { parseQaLine, readQaFile } from "../../src/data/qa.js";
import { NrtError } from "../../src/errors.js";
import { QA_LINES } from "./_setup.js";

const tmp = mkdtempSync(join(tmpdir(), "nrt-relfuzz-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs `f`: its value, or the NrtError it threw; anything else it throws fails the property. */
function valueOrNrtError<T>(f: () => T): T | NrtError {
  try {
    return f();
  } catch (e) {
    if (e instanceof NrtError && e.message.length > 0) return e;
    throw e;
  }
}

/** Bytes of `base` with some overwritten, some inserted, and the end cut or extended. */
function mutated(base: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc
    .record({
      writes: fc.array(fc.tuple(fc.nat(Math.max(base.length - 1, 0)), fc.integer({ min: 0, max: 255 })), {
        maxLength: 6,
      }),
      inserts: fc.array(fc.tuple(fc.nat(base.length), fc.constantFrom(...'{}[]":,\n\r\\ \x00\xff'.split(""))), {
        maxLength: 3,
      }),
      cut: fc.nat(base.length + 4),
    })
    .map(({ writes, inserts, cut }) => {
      const b = [...base];
      for (const [i, v] of writes) if (i < b.length) b[i] = v;
      for (const [i, ch] of inserts) b.splice(i, 0, ch.charCodeAt(0) & 0xff);
      return new Uint8Array(b.slice(0, cut).concat(cut > b.length ? [0x0a] : []));
    });
}

let n = 0;
const file = (bytes: Uint8Array | string, ext: string): string => {
  const p = join(tmp, `f${n++}${ext}`);
  writeFileSync(p, bytes);
  return p;
};

describe("the QA JSON Lines reader", () => {
  it("parseQaLine returns a record or a problem for any text, never throws", () => {
    const text = fc.oneof(
      fc.string({ unit: "binary" }),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc
        .record(
          {
            question: fc.oneof(fc.string(), fc.jsonValue()),
            answer: fc.oneof(fc.string(), fc.jsonValue()),
            messages: fc.oneof(
              fc.array(fc.record({ role: fc.constantFrom("user", "assistant", "system"), content: fc.string() })),
              fc.array(fc.jsonValue(), { maxLength: 3 }),
              fc.jsonValue(),
            ),
          },
          { requiredKeys: [] },
        )
        .map((o) => JSON.stringify(o)),
    );
    fc.assert(
      fc.property(text, fc.integer({ min: 1, max: 1e6 }), (t, line) => {
        const r = parseQaLine(t, line);
        expect(r.line).toBe(line);
        if ("message" in r) expect(r.message.length).toBeGreaterThan(0);
        else {
          expect(typeof r.question).toBe("string");
          expect(typeof r.answer).toBe("string");
          expect(r.answer.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("readQaFile on random bytes: records, or an NrtError naming the file", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, skipInvalid) => {
        const p = file(bytes, ".jsonl");
        const r = valueOrNrtError(() => readQaFile(p, { skipInvalid }));
        if (r instanceof NrtError) expect(r.message).toContain(p);
        else expect(r.records.length).toBeGreaterThan(0);
      }),
      { numRuns: 300 },
    );
  });

  it("readQaFile on a valid file with bytes overwritten, inserted or cut: records, or an NrtError with file:line", () => {
    const valid = new TextEncoder().encode(`${QA_LINES.join("\n")}\n`);
    fc.assert(
      fc.property(mutated(valid), fc.boolean(), (bytes, skipInvalid) => {
        const p = file(bytes, ".jsonl");
        const r = valueOrNrtError(() => readQaFile(p, { skipInvalid }));
        if (r instanceof NrtError) expect(r.message).toMatch(new RegExp(`${p}(:\\d+)?: `));
        else for (const rec of r.records) expect(rec.line).toBeGreaterThanOrEqual(1);
      }),
      { numRuns: 500 },
    );
  });

  it("reports exactly the bad lines, keeps exactly the good ones and counts the duplicates", () => {
    const kinds = {
      ok: (i: number) => JSON.stringify({ question: `q${i}`, answer: `a${i}` }),
      dup: () => JSON.stringify({ question: "q", answer: "a" }),
      chat: (i: number) =>
        JSON.stringify({
          messages: [
            { role: "user", content: `q${i}` },
            { role: "assistant", content: `a${i}` },
          ],
        }),
      blank: () => "   ",
      malformed: () => '{"question": "q", "answer": "a"',
      noQuestion: () => JSON.stringify({ answer: "a" }),
      numberAnswer: () => JSON.stringify({ question: "q", answer: 3 }),
      emptyAnswer: () => JSON.stringify({ question: "q", answer: "" }),
      noAssistant: () => JSON.stringify({ messages: [{ role: "user", content: "q" }] }),
      array: () => "[]",
    };
    const good = new Set(["ok", "dup", "chat"]);
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...(Object.keys(kinds) as (keyof typeof kinds)[])), { maxLength: 30 }),
        fc.constantFrom("\n", "\r\n"),
        (ks, eol) => {
          const p = file(ks.map((k, i) => kinds[k](i)).join(eol), ".jsonl");
          const bad = ks.flatMap((k, i) => (good.has(k) || k === "blank" ? [] : [i + 1]));
          const kept = ks.flatMap((k, i) => (good.has(k) ? [i + 1] : []));
          const dups = Math.max(0, ks.filter((k) => k === "dup").length - 1);
          const strict = valueOrNrtError(() => readQaFile(p));
          const lenient = valueOrNrtError(() => readQaFile(p, { skipInvalid: true }));
          if (kept.length === 0) expect(lenient).toBeInstanceOf(NrtError);
          else {
            expect(lenient).not.toBeInstanceOf(NrtError);
            const l = lenient as Exclude<typeof lenient, NrtError>;
            expect(l.records.map((r) => r.line)).toEqual(kept);
            expect(l.skipped.map((q) => q.line)).toEqual(bad);
            expect(l.duplicates).toBe(dups);
          }
          if (bad.length > 0) {
            expect(strict).toBeInstanceOf(NrtError);
            const msg = (strict as NrtError).message;
            expect(msg).toContain(`${bad.length} invalid record(s)`);
            for (const line of bad.slice(0, 20)) expect(msg).toContain(`${p}:${line}: `);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("the nrt train config readers", () => {
  const validYaml = new TextEncoder().encode(
    "method: nrt-ws\ngroup_size: 8\nprompts_per_step: 8\nmax_trace_tokens: 64\nlr: 3.0e-4\nsteps: 200\non_nan: skip\n",
  );
  const validJson = new TextEncoder().encode(JSON.stringify({ method: "rlpr", lr: 1e-3, seed: 3, progress: false }));

  /** readConfigFile then resolveFields: settings, or an error with a message naming the file. */
  function readAndResolve(p: string): void {
    let raw: Record<string, unknown>;
    try {
      raw = readConfigFile(p);
    } catch (e) {
      expect(e).toBeInstanceOf(NrtError);
      expect((e as Error).message).toContain(p);
      return;
    }
    try {
      resolveFields(trainFields, raw, {}, p);
    } catch (e) {
      expect(e).toBeInstanceOf(Error);
      expect((e as Error).message).toContain(`${p}: `);
    }
  }

  it("random bytes as .yaml and .json", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.constantFrom(".yaml", ".json", ".yml"), (b, ext) =>
        readAndResolve(file(b, ext)),
      ),
      { numRuns: 400 },
    );
  });

  it("valid config files with bytes overwritten, inserted or cut", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          mutated(validYaml).map((b) => [b, ".yaml"] as const),
          mutated(validJson).map((b) => [b, ".json"] as const),
        ),
        ([b, ext]) => readAndResolve(file(b, ext)),
      ),
      { numRuns: 600 },
    );
  });

  it("random mappings of known keys to random values", () => {
    const keys = [...Object.keys(trainFields).map((k) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)), "x"];
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...keys), fc.jsonValue(), { maxKeys: 5 }), (d) => {
        try {
          resolveFields(trainFields, d, {}, "cfg");
        } catch (e) {
          expect(e).toBeInstanceOf(Error);
          expect((e as Error).message).toMatch(/^cfg: /);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("--resume of a run directory whose run_config.json is damaged: settings or an NrtError", () => {
    const good = new TextEncoder().encode(
      JSON.stringify({ train: { model: "m", data: "d.jsonl", out: "r", method: "sft", steps: 10 }, versions: {} }),
    );
    fc.assert(
      fc.property(fc.oneof(mutated(good), fc.uint8Array({ maxLength: 60 })), (b) => {
        const run = join(tmp, `run${n++}`);
        mkdirSync(run);
        writeFileSync(join(run, "run_config.json"), b);
        valueOrNrtError(() => resolveTrainConfig({ resume: run }));
      }),
      { numRuns: 400 },
    );
  });
});
