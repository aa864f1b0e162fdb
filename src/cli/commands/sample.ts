import type { Command } from "commander";
import { NrtError } from "../../errors.js";
import { loadModel } from "../../io/load.js";
import { generate } from "../../model/generate.js";
import { setThreads } from "../../model/native.js";
import { parseIntArg } from "../args.js";

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
      setThreads(parseIntArg(o.threads, "--threads"));
      const { model, tokenizer } = loadModel(path);
      const prompt = [...(tokenizer.bosId !== null ? [tokenizer.bosId] : []), ...tokenizer.encode(o.prompt as string)];
      const n = parseIntArg(o.n, "--n");
      const maxNew = parseIntArg(o.maxNewTokens, "--max-new-tokens");
      const streams = generate(
        model,
        Array.from({ length: n }, () => prompt),
        {
          maxNew,
          temperature: Number(o.temperature),
          topP: Number(o.topP),
          topK: parseIntArg(o.topK, "--top-k", 0),
          seed: parseIntArg(o.seed, "--seed", 0),
          stop: tokenizer.eosId !== null ? [tokenizer.eosId] : [],
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
