import type { Command } from "commander";
import { importLlama2c } from "../../import/llama2c.js";

export function register(program: Command): void {
  const cmd = program.command("import").description("convert a model from another format into a model directory");
  cmd
    .command("llama2c")
    .description(
      "a llama2.c checkpoint (legacy format) and its tokenizer.bin → config.json, model.safetensors, tokenizer.json",
    )
    .argument("<model>", "llama2.c checkpoint, e.g. stories260K.bin")
    .requiredOption("--tokenizer <file>", "llama2.c tokenizer, e.g. tok512.bin")
    .requiredOption("-o, --out <dir>", "model directory to write")
    .option("--json", "print one JSON object on stdout")
    .action((model: string, o: { tokenizer: string; out: string; json?: boolean }) => {
      const r = importLlama2c(model, o.tokenizer, o.out);
      const c = r.config;
      const summary = {
        out: o.out,
        params: r.numParams,
        vocab_size: c.vocabSize,
        hidden_size: c.hiddenSize,
        layers: c.numLayers,
        heads: c.numHeads,
        kv_heads: c.numKvHeads,
        tied: c.tied,
        merges: r.numMerges,
      };
      if (o.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      else {
        process.stderr.write(
          `wrote ${o.out}: ${r.numParams} parameters, ${c.numLayers} layers, ${c.numHeads} heads ` +
            `(${c.numKvHeads} kv), vocab ${c.vocabSize}${c.tied ? " (tied)" : ""}, ${r.numMerges} merges\n`,
        );
      }
    });
}
