import type { Command } from "commander";
import { importLlama2c } from "../../import/llama2c.js";
import { checkOutput } from "../../io/output.js";

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
    .option("--force", "replace an existing output directory (never one holding the inputs)")
    .option("--json", "print one JSON object on stdout")
    .action((model: string, o: { tokenizer: string; out: string; json?: boolean; force?: boolean }) => {
      checkOutput(o.out, { kind: "dir", force: o.force, inputFiles: [model, o.tokenizer] });
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
