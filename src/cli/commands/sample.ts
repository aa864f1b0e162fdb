import type { Command } from "commander";
import { NrtError } from "../../errors.js";
import { loadModel } from "../../io/load.js";
import { generate } from "../../model/generate.js";
import { checkFits, samplerBytes } from "../../model/memory.js";
import { setThreads } from "../../model/native.js";
import { parseIntArg, parseNumArg } from "../args.js";

export function register(program: Command): void {
  program
    .command("sample")
    .description("continue a prompt with a model (the trace, then the answer after ⟨answer_start⟩)")
    .argument("[model]", "model or run directory")
    .option("--model <dir>", "model or run directory")
    .requiredOption("--prompt <text>", "prompt text (⟨bos⟩ is added when the tokenizer has one)")
    .option("--temperature <x>", "0 means greedy", "0")
    .option("--top-p <x>", "nucleus sampling", "1")
    .option("--top-k <n>", "top-k sampling (0: off)", "0")
    .option("--max-new-tokens <n>", "tokens to generate", "64")
    .option("--n <n>", "number of samples", "1")
    .option("--seed <n>", "seed", "0")
    .option("--threads <n>", "compute threads", "1")
    .option("--json", "print one JSON object on stdout")
    .action((pos: string | undefined, o: Record<string, string | boolean>) => {
      const path = (o.model as string | undefined) ?? pos;
      if (!path) throw new NrtError("a model is required (--model DIR)", "nrt sample");
      // every flag is checked before the model is loaded: nothing invalid reaches the native engine
      const temperature = parseNumArg(o.temperature, "--temperature", (x) => x >= 0, "a number ≥ 0 (0: greedy)");
      const topP = parseNumArg(o.topP, "--top-p", (x) => x > 0 && x <= 1, "a number in (0, 1]");
      const topK = parseIntArg(o.topK, "--top-k", 0);
      const seed = parseIntArg(o.seed, "--seed", 0);
      const n = parseIntArg(o.n, "--n");
      let maxNew = parseIntArg(o.maxNewTokens, "--max-new-tokens");
      setThreads(parseIntArg(o.threads, "--threads"));
      const { model, tokenizer, stopIds } = loadModel(path);
      let text: number[];
      try {
        text = tokenizer.encode(o.prompt as string);
      } catch (e) {
        throw e instanceof NrtError ? new NrtError(e.message, "--prompt") : e;
      }
      const prompt = [...(tokenizer.bosId !== null ? [tokenizer.bosId] : []), ...text];
      const ctx = model.config.maxPositionEmbeddings;
      if (prompt.length >= ctx)
        throw new NrtError(
          `takes ${prompt.length} tokens, the model's context is ${ctx}: no room to generate`,
          "--prompt",
        );
      if (prompt.length + maxNew > ctx) {
        process.stderr.write(
          `nrt: warning: --max-new-tokens ${maxNew} cut to ${ctx - prompt.length}: the prompt takes ${prompt.length} of the model's ${ctx} positions\n`,
        );
        maxNew = ctx - prompt.length;
      }
      checkFits(samplerBytes(model.config, n, prompt.length + maxNew), `sampling ${n} streams`, "--n");
      const streams = generate(
        model,
        Array.from({ length: n }, () => prompt),
        {
          maxNew,
          temperature,
          topP,
          topK,
          seed,
          stop: stopIds ?? [],
        },
      );
      // the text runs on to the end, ⟨eos⟩ included (decoded as the tokenizer decodes it)
      const samples = streams.map((s) => {
        const ids = s.stopId >= 0 ? [...s.tokens, s.stopId] : s.tokens;
        return { text: tokenizer.decode(ids), tokens: ids };
      });
      if (o.json) process.stdout.write(`${JSON.stringify({ prompt: o.prompt, samples })}\n`);
      else for (const s of samples) process.stdout.write(`${o.prompt}${s.text}\n`);
    });
}
