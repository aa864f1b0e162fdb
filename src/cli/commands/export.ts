import type { Command } from "commander";
import { NrtError } from "../../errors.js";
import { exportGguf, type GgufDtype } from "../../export/to-gguf.js";

export function register(program: Command): void {
  program
    .command("export")
    .description("write a model in another format: --format gguf (llama.cpp), with its tokenizer")
    .argument("[model]", "model or run directory")
    .option("--model <dir>", "model or run directory")
    .requiredOption("--format <name>", "output format (gguf)")
    .requiredOption("-o, --out <file>", "output file, e.g. model.gguf")
    .option("--dtype <type>", "f32 or f16 for the weight matrices (norm weights stay f32)", "f32")
    .option("--name <text>", "general.name in the GGUF (default: the directory's name)")
    .option("--json", "print one JSON object on stdout")
    .action(
      (
        pos: string | undefined,
        o: { model?: string; format: string; out: string; dtype: string; name?: string; json?: boolean },
      ) => {
        const path = o.model ?? pos;
        if (!path) throw new NrtError("a model is required (--model DIR)", "nrt export");
        if (o.format !== "gguf")
          throw new NrtError(`unknown format ${JSON.stringify(o.format)} (nrt writes gguf)`, "--format");
        if (o.dtype !== "f32" && o.dtype !== "f16") {
          throw new NrtError(`must be f32 or f16, got ${JSON.stringify(o.dtype)}`, "--dtype");
        }
        const r = exportGguf(path, o.out, { dtype: o.dtype as GgufDtype, name: o.name });
        for (const w of r.warnings) process.stderr.write(`nrt: warning: ${w}\n`);
        if (o.json) process.stdout.write(`${JSON.stringify({ ...r, dtype: o.dtype })}\n`);
        else {
          process.stderr.write(
            `wrote ${r.path}: GGUF v3, ${r.tensors} tensors, ${o.dtype}, tokenizer ${r.tokenizerModel}, ${r.bytes} bytes\n`,
          );
        }
      },
    );
}
