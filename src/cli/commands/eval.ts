import { writeFileSync } from "node:fs";
import os from "node:os";
import type { Command } from "commander";
import { qaFields, readQaFile } from "../../data/qa.js";
import { NrtError } from "../../errors.js";
import { evaluate } from "../../eval/evaluate.js";
import { formatEvalTable, formatHardTokens, formatSamples, predictionsJsonl } from "../../eval/format.js";
import { loadModel } from "../../io/load.js";
import { setThreads } from "../../model/native.js";
import { parseIntArg } from "../args.js";

interface EvalFlags {
  model?: string;
  data?: string;
  json?: boolean;
  maxTraceTokens: string;
  maxAnswerTokens: string;
  seed: string;
  threads: string;
  samples?: string;
  skipInvalid?: boolean;
  predictions?: string;
  questionField?: string;
  answerField?: string;
  messagesField?: string;
  force?: boolean;
}

export function register(program: Command): void {
  program
    .command("eval")
    .description("evaluate a model on question–answer pairs: accuracies, traces, decision entropy (SPEC §7)")
    .argument("[model]", "model or run directory")
    .option("--model <dir>", "model or run directory")
    .option("--data <file>", "JSON Lines of {question, answer}")
    .option("--json", "print one JSON object on stdout (tables go to stderr)")
    .option("--max-trace-tokens <n>", "trace limit", "64")
    .option("--max-answer-tokens <n>", "answer limit (raised to the longest reference answer)", "32")
    .option("--seed <n>", "seed of the sampled traces", "0")
    .option("--threads <n>", "compute threads", String(Math.max(1, os.availableParallelism())))
    .option("--samples <n>", "questions to show with their traces (default 3; with --json only when given)")
    .option("--skip-invalid", "skip invalid data records with a warning")
    .option("--question-field <name>", "the data's question field", "question")
    .option("--answer-field <name>", "the data's answer field", "answer")
    .option("--messages-field <name>", "the data's chat-turns field", "messages")
    .option("--predictions <file>", "write one JSON line per question: reference, free trace and answer, correct")
    .option("--force", "let --predictions replace an existing file")
    .action((pos: string | undefined, o: EvalFlags) => {
      const path = o.model ?? pos;
      if (!path) throw new NrtError("a model is required (--model DIR)", "nrt eval");
      if (!o.data) throw new NrtError("--data FILE.jsonl is required", "nrt eval");
      const samples = o.samples === undefined ? (o.json ? 0 : 3) : parseIntArg(o.samples, "--samples", 0);
      const opts = {
        maxTraceTokens: parseIntArg(o.maxTraceTokens, "--max-trace-tokens"),
        maxAnswerTokens: parseIntArg(o.maxAnswerTokens, "--max-answer-tokens"),
        seed: parseIntArg(o.seed, "--seed", 0),
        samples,
        where: o.data,
      };
      setThreads(parseIntArg(o.threads, "--threads"));
      const data = readQaFile(o.data, { skipInvalid: Boolean(o.skipInvalid), fields: qaFields(o) });
      for (const p of data.skipped) process.stderr.write(`nrt eval: skipped ${o.data}:${p.line}: ${p.message}\n`);
      const loaded = loadModel(path);
      const t0 = Date.now();
      const log = (s: string) => process.stderr.write(`nrt eval: ${s}\n`);
      log(`${data.records.length} questions, model ${loaded.dir}`);
      const r = evaluate(loaded, data.records, { ...opts, onPhase: log });
      log(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      if (r.answer_start_added)
        log("the model has no <answer_start>: added in memory as training adds it (SPEC §2), rows copied from ⟨eos⟩");
      if (o.predictions) writePredictions(o.predictions, predictionsJsonl(r.questions), Boolean(o.force));
      const text = [
        formatEvalTable(r),
        "",
        "hard tokens (answer tokens by their probability with no trace, after the greedy trace):",
        formatHardTokens(r.hard_tokens),
        ...(r.samples.length > 0 ? ["", formatSamples(r.samples)] : []),
      ].join("\n");
      if (o.json) {
        process.stderr.write(`${text}\n`);
        const { questions: _q, samples: s, ...metrics } = r;
        const out = samples > 0 ? { ...metrics, samples: s } : metrics;
        process.stdout.write(`${JSON.stringify(out)}\n`);
      } else {
        process.stdout.write(`${text}\n`);
      }
    });
}

/** Writes the predictions file; an existing file is replaced only with --force. */
function writePredictions(path: string, text: string, force: boolean): void {
  try {
    writeFileSync(path, text, { flag: force ? "w" : "wx" });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EEXIST") throw new NrtError("already exists (use --force to replace it)", path);
    throw new NrtError(`cannot write predictions (${code ?? String(e)})`, path);
  }
}
