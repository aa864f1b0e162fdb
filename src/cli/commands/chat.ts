import os from "node:os";
import { createInterface } from "node:readline";
import type { Command } from "commander";
import { NrtError } from "../../errors.js";
import { loadModel } from "../../io/load.js";
import { setThreads } from "../../model/native.js";
import { type Reply, type ReplyOptions, reply } from "../../rollout/reply.js";
import { parseIntArg, parseNumArg as parseNum } from "../args.js";

const DIM = "\x1b[2m";
const RESET = "\x1b[0m";

/** A reply as printed: on a terminal the trace dimmed, then the answer; piped, two labelled lines. */
export function formatReply(r: Reply, tty: boolean): string {
  if (!tty) return `trace: ${r.trace}\nanswer: ${r.answer}\n`;
  const trace = `${r.trace}${r.truncated ? " …" : ""}`;
  return `${trace ? `${DIM}${trace}${RESET}\n` : ""}${r.answer}${r.finished ? "" : " …"}\n`;
}

export function register(program: Command): void {
  program
    .command("chat")
    .description("talk to a model: each line is a question; its trace is shown dimmed, then its answer")
    .argument("[model]", "model or run directory")
    .option("--model <dir>", "model or run directory")
    .option("--temperature <x>", "0 means greedy", "0")
    .option("--top-p <x>", "nucleus sampling (1: off)", "1")
    .option("--top-k <n>", "top-k sampling (0: off)", "0")
    .option("--max-trace-tokens <n>", "trace limit (0: answer at once)", "64")
    .option("--max-new-tokens <n>", "answer limit", "64")
    .option("--seed <n>", "seed (line i samples with seed + 2i)", "0")
    .option("--threads <n>", "compute threads", String(Math.max(1, os.availableParallelism())))
    .action(async (pos: string | undefined, o: Record<string, string>) => {
      const path = o.model ?? pos;
      if (!path) throw new NrtError("a model is required (nrt chat MODEL)", "nrt chat");
      const opts: ReplyOptions = {
        temperature: parseNum(o.temperature, "--temperature", (x) => x >= 0, "a number ≥ 0"),
        topP: parseNum(o.topP, "--top-p", (x) => x > 0 && x <= 1, "in (0, 1]"),
        topK: parseIntArg(o.topK, "--top-k", 0),
        maxTraceTokens: parseIntArg(o.maxTraceTokens, "--max-trace-tokens", 0),
        maxNewTokens: parseIntArg(o.maxNewTokens, "--max-new-tokens"),
        seed: parseIntArg(o.seed, "--seed", 0),
      };
      setThreads(parseIntArg(o.threads, "--threads"));
      const loaded = loadModel(path);
      const interactive = Boolean(process.stdin.isTTY);
      const tty = Boolean(process.stdout.isTTY);
      if (loaded.tokenizer.answerStartId === null && loaded.model.config.answerStartTokenId === null)
        process.stderr.write("note: the model has no <answer_start> token: no trace, its whole output is the answer\n");
      if (interactive)
        process.stderr.write(
          `nrt chat: ${loaded.dir} (${loaded.chatTemplate ? "chat template" : "plain prompts"}); each turn is answered on its own; Ctrl-D quits\n`,
        );
      const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: interactive && tty });
      rl.setPrompt("> ");
      if (interactive) rl.prompt();
      let turn = 0;
      for await (const line of rl) {
        if (line.trim()) {
          try {
            const r = reply(loaded, line, { ...opts, seed: opts.seed + 2 * turn++ });
            process.stdout.write(formatReply(r, tty));
          } catch (e) {
            if (!(e instanceof NrtError)) throw e;
            process.stderr.write(`error: ${e.message}\n`);
          }
        }
        if (interactive) rl.prompt();
      }
    });
}
