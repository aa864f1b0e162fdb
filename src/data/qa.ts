import fs from "node:fs";
import { NrtError } from "../errors.js";

/** A question–answer pair (SPEC §6). Chat records keep their messages; the last assistant turn is the answer. */
export interface QaRecord {
  question: string;
  answer: string;
  /** chat form: the turns before the last assistant turn */
  messages?: { role: string; content: string }[];
  /** 1-based line in the source file */
  line: number;
}

export interface QaProblem {
  line: number;
  message: string;
}

/** Parses one JSONL line into a record, or says what is wrong with it. */
export function parseQaLine(text: string, line: number): QaRecord | QaProblem {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    return { line, message: `malformed JSON (${(e as Error).message})` };
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) return { line, message: "not a JSON object" };
  const r = o as Record<string, unknown>;
  if (Array.isArray(r.messages)) {
    const msgs = r.messages as unknown[];
    for (const [i, m] of msgs.entries()) {
      const mm = m as Record<string, unknown>;
      if (typeof mm !== "object" || mm === null || typeof mm.role !== "string" || typeof mm.content !== "string")
        return { line, message: `messages[${i}] needs string "role" and "content"` };
    }
    const turns = msgs as { role: string; content: string }[];
    let last = -1;
    for (let i = turns.length - 1; i >= 0; i--)
      if (turns[i].role === "assistant") {
        last = i;
        break;
      }
    if (last < 0) return { line, message: "chat record has no assistant turn" };
    if (turns[last].content.length === 0) return { line, message: "empty answer (last assistant turn)" };
    const before = turns.slice(0, last);
    const question = [...before].reverse().find((m) => m.role === "user")?.content ?? "";
    return { question, answer: turns[last].content, messages: before, line };
  }
  if (typeof r.question !== "string") return { line, message: `"question" must be a string` };
  if (typeof r.answer !== "string") return { line, message: `"answer" must be a string` };
  if (r.answer.length === 0) return { line, message: "empty answer" };
  return { question: r.question, answer: r.answer, line };
}

export interface QaFile {
  records: QaRecord[];
  /** problems turned into warnings (with skipInvalid) */
  skipped: QaProblem[];
  duplicates: number;
}

/**
 * Reads a whole JSONL file of QA records and checks every line before anything trains. Problems are reported
 * all at once with file:line; with `skipInvalid` they become counted warnings instead.
 */
export function readQaFile(path: string, { skipInvalid = false } = {}): QaFile {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(path);
  } catch (e) {
    throw new NrtError(`cannot read data file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, path);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const bad = findInvalidUtf8Line(bytes);
    throw new NrtError("invalid UTF-8", `${path}:${bad}`);
  }
  const records: QaRecord[] = [];
  const problems: QaProblem[] = [];
  const seen = new Set<string>();
  let duplicates = 0;
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line.length === 0) return;
    const r = parseQaLine(line, i + 1);
    if ("message" in r) problems.push(r);
    else {
      const key = JSON.stringify([r.messages ?? r.question, r.answer]);
      if (seen.has(key)) duplicates++;
      seen.add(key);
      records.push(r);
    }
  });
  if (problems.length > 0 && !skipInvalid) {
    const shown = problems.slice(0, 20).map((p) => `  ${path}:${p.line}: ${p.message}`);
    const more = problems.length > 20 ? `\n  … and ${problems.length - 20} more` : "";
    throw new NrtError(
      `${problems.length} invalid record(s) (use --skip-invalid to skip them):\n${shown.join("\n")}${more}`,
      path,
    );
  }
  if (records.length === 0) throw new NrtError("no records", path);
  return { records, skipped: problems, duplicates };
}

function findInvalidUtf8Line(bytes: Buffer): number {
  let line = 1;
  let start = 0;
  const dec = new TextDecoder("utf-8", { fatal: true });
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 0x0a) {
      try {
        dec.decode(bytes.subarray(start, i));
      } catch {
        return line;
      }
      line++;
      start = i + 1;
    }
  }
  return line;
}
