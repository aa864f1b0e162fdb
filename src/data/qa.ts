import { NrtError } from "../errors.js";
import { LIMITS, type LinesDigest, readLines } from "../io/read.js";

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
  if (r.messages !== undefined && !Array.isArray(r.messages))
    return { line, message: `"messages" must be a list of {"role", "content"} turns, got ${typeOf(r.messages)}` };
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

function typeOf(v: unknown): string {
  return v === null ? "null" : typeof v === "object" ? "an object" : `a ${typeof v}`;
}

export interface QaFile {
  records: QaRecord[];
  /** problems turned into warnings (with skipInvalid) */
  skipped: QaProblem[];
  duplicates: number;
  /** each duplicate's line and the line of the record it repeats */
  duplicateLines: { line: number; first: number }[];
  /** the file's byte count and SHA-256, as read */
  digest: LinesDigest;
}

/**
 * Reads a JSONL file of QA records, a line at a time (a line longer than `LIMITS.dataLineBytes` is an error at
 * file:line), and checks every line before anything trains. Problems are reported all at once with file:line;
 * with `skipInvalid` they become counted warnings instead.
 */
export function readQaFile(path: string, { skipInvalid = false } = {}): QaFile {
  const records: QaRecord[] = [];
  const problems: QaProblem[] = [];
  const seen = new Map<string, number>();
  const duplicateLines: { line: number; first: number }[] = [];
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  const digest = readLines(
    path,
    "data file",
    (bytes, n) => {
      let text: string;
      try {
        text = utf8.decode(bytes);
      } catch {
        throw new NrtError("invalid UTF-8", `${path}:${n}`);
      }
      const line = text.trim();
      if (line.length === 0) return;
      const r = parseQaLine(line, n);
      if ("message" in r) problems.push(r);
      else {
        const key = JSON.stringify([r.messages ?? r.question, r.answer]);
        const first = seen.get(key);
        if (first !== undefined) duplicateLines.push({ line: n, first });
        else seen.set(key, n);
        records.push(r);
      }
    },
    LIMITS.dataLineBytes,
  );
  if (problems.length > 0 && !skipInvalid) {
    const shown = problems.slice(0, 20).map((p) => `  ${path}:${p.line}: ${p.message}`);
    const more = problems.length > 20 ? `\n  … and ${problems.length - 20} more` : "";
    throw new NrtError(
      `${problems.length} invalid record(s) (use --skip-invalid to skip them):\n${shown.join("\n")}${more}`,
      path,
    );
  }
  if (records.length === 0) throw new NrtError("no records", path);
  return { records, skipped: problems, duplicates: duplicateLines.length, duplicateLines, digest };
}

/** "N duplicate record(s) (same question and answer): line 7 repeats line 2, …" (the first 10 named). */
export function duplicatesWarning(path: string, dups: readonly { line: number; first: number }[]): string {
  const named = dups.slice(0, 10).map((d) => `line ${d.line} repeats line ${d.first}`);
  const more = dups.length > 10 ? `, … and ${dups.length - 10} more` : "";
  return `${path}: ${dups.length} duplicate record(s) (same question and answer): ${named.join(", ")}${more}`;
}
