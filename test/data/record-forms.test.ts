// The data as users have it: {question, answer} under other field names, chat {messages}, and TRL's
// prompt–completion records (plain and conversational), each with its errors named.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseQaLine, readQaFile } from "../../src/data/qa.js";

const line = (o: unknown, fields = {}) => parseQaLine(JSON.stringify(o), 3, fields);

describe("record forms", () => {
  it("reads other field names for question, answer and messages", () => {
    const f = { question: "instruction", answer: "output", messages: "conversation" };
    expect(line({ instruction: "2+2?", output: "4", question: 1 }, f)).toEqual({
      question: "2+2?",
      answer: "4",
      line: 3,
    });
    const conv = [
      { role: "user", content: "hi" },
      { role: "assistant", content: "yo" },
    ];
    expect(line({ conversation: conv }, f)).toEqual({ question: "hi", answer: "yo", messages: [conv[0]], line: 3 });
    expect(line({ question: "q", answer: "a" }, f)).toEqual({ line: 3, message: '"instruction" must be a string' });
    expect(line({ instruction: "q", output: 4 }, f)).toEqual({ line: 3, message: '"output" must be a string' });
    expect(line({ conversation: "x" }, f)).toMatchObject({ message: /"conversation" must be a list/ });
  });

  it("reads TRL prompt–completion records, plain and conversational", () => {
    expect(line({ prompt: "The sky is", completion: " blue." })).toEqual({
      question: "The sky is",
      answer: " blue.",
      line: 3,
    });
    const prompt = [
      { role: "system", content: "be brief" },
      { role: "user", content: "colour of the sky?" },
    ];
    const completion = [{ role: "assistant", content: "blue" }];
    expect(line({ prompt, completion })).toEqual({
      question: "colour of the sky?",
      answer: "blue",
      messages: prompt,
      line: 3,
    });
    expect(line({ prompt: "x", completion: [] })).toMatchObject({
      message: /"prompt" and "completion" must both be strings or both lists of turns, got a string and an object/,
    });
    expect(line({ prompt: "x", completion: "" })).toMatchObject({ message: "empty answer (completion)" });
    expect(
      line({ prompt: [{ role: "user", content: "q" }], completion: [{ role: "user", content: "no" }] }),
    ).toMatchObject({ message: "chat record has no assistant turn" });
    expect(line({ prompt: [{ role: "user" }], completion: completion })).toMatchObject({
      message: 'prompt[0] needs string "role" and "content"',
    });
  });

  it("readQaFile passes the field names on, and names the line of a bad record", () => {
    const dir = mkdtempSync(join(tmpdir(), "nrt-forms-"));
    const p = join(dir, "d.jsonl");
    writeFileSync(p, `${JSON.stringify({ q: "a", a: "b" })}\n${JSON.stringify({ q: "c" })}\n`);
    expect(() => readQaFile(p, { fields: { question: "q", answer: "a" } })).toThrow(/d\.jsonl:2: "a" must be a string/);
    const ok = readQaFile(p, { fields: { question: "q", answer: "a" }, skipInvalid: true });
    expect(ok.records.map((r) => [r.question, r.answer])).toEqual([["a", "b"]]);
  });
});
