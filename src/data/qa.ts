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

/** Where a record's parts are: the field names (defaults `question`, `answer`, `messages`). */
export interface QaFields {
  question?: string;
  answer?: string;
  messages?: string;
}

/** The field names of `nrt train`'s settings (or any object with them). */
export function qaFields(o: { questionField?: string; answerField?: string; messagesField?: string }): QaFields {
  return { question: o.questionField, answer: o.answerField, messages: o.messagesField };
}

/**
 * Parses one JSONL line into a record, or says what is wrong with it. Three forms: `{question, answer}` (field names
 * as `fields` says), chat `{messages: [...]}` whose last assistant turn is the answer, and TRL's prompt–completion
 * records, `{prompt: "text", completion: "text"}` or conversational `{prompt: [turns], completion: [turns]}`.
 */
export function parseQaLine(text: string, line: number, fields: QaFields = {}): QaRecord | QaProblem {
  const qKey = fields.question ?? "question";
  const aKey = fields.answer ?? "answer";
  const mKey = fields.messages ?? "messages";
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    return { line, message: `malformed JSON (${(e as Error).message})` };
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) return { line, message: "not a JSON object" };
  const r = o as Record<string, unknown>;
  if (r[mKey] === undefined && r[qKey] === undefined && r.prompt !== undefined && r.completion !== undefined)
    return promptCompletion(r.prompt, r.completion, line);
  if (r[mKey] !== undefined && !Array.isArray(r[mKey]))
    return { line, message: `"${mKey}" must be a list of {"role", "content"} turns, got ${typeOf(r[mKey])}` };
  if (Array.isArray(r[mKey])) return chatRecord(r[mKey] as unknown[], line, mKey);
  if (typeof r[qKey] !== "string") return { line, message: `"${qKey}" must be a string` };
  if (typeof r[aKey] !== "string") return { line, message: `"${aKey}" must be a string` };
  if ((r[aKey] as string).length === 0) return { line, message: "empty answer" };
  return { question: r[qKey] as string, answer: r[aKey] as string, line };
}

/** TRL's prompt–completion record: plain text on both sides, or turns on both (the completion's last assistant turn). */
function promptCompletion(prompt: unknown, completion: unknown, line: number): QaRecord | QaProblem {
  if (typeof prompt === "string" && typeof completion === "string") {
    if (completion.length === 0) return { line, message: "empty answer (completion)" };
    return { question: prompt, answer: completion, line };
  }
  if (Array.isArray(prompt) && Array.isArray(completion)) return chatRecord([...prompt, ...completion], line, "prompt");
  return {
    line,
    message: `"prompt" and "completion" must both be strings or both lists of turns, got ${typeOf(prompt)} and ${typeOf(completion)}`,
  };
}

/** A chat record: the turns before the last assistant turn are the prompt, its content the answer. */
function chatRecord(msgs: unknown[], line: number, key: string): QaRecord | QaProblem {
  for (const [i, m] of msgs.entries()) {
    const mm = m as Record<string, unknown>;
    if (typeof mm !== "object" || mm === null || typeof mm.role !== "string" || typeof mm.content !== "string")
      return { line, message: `${key}[${i}] needs string "role" and "content"` };
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
export function readQaFile(
  path: string,
  { skipInvalid = false, fields = {} }: { skipInvalid?: boolean; fields?: QaFields } = {},
): QaFile {
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
      const r = parseQaLine(line, n, fields);
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
