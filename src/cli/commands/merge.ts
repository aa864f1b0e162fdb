import type { Command } from "commander";
import { NrtError } from "../../errors.js";
import { mergeAdapter } from "../../export/merge.js";
import { readAdapterConfig, resolveBase } from "../../io/adapter-dir.js";
import { isAdapterDir, resolveModelDir } from "../../io/model-dir.js";
import { checkOutput } from "../../io/output.js";
import type { SafetensorsDtype } from "../../io/safetensors.js";
import { parseSize } from "../../io/weights.js";

const DTYPES: Record<string, SafetensorsDtype | undefined> = {
  auto: undefined,
  float32: "F32",
  bfloat16: "BF16",
  float16: "F16",
};

export function register(program: Command): void {
  program
    .command("merge")
    .description("fold a LoRA adapter (a LoRA run, its checkpoint or final/, or a PEFT adapter) into its base model")
    .argument("<adapter>", "adapter directory (adapter_config.json) or a LoRA run directory")
    .requiredOption("-o, --out <dir>", "model directory to write")
    .option("--save-dtype <type>", "auto (the base's), float32, bfloat16 or float16", "auto")
    .option("--max-shard-size <size>", "split the weights into shards of at most this size", "5GB")
    .option("--force", "replace an existing output directory (never one holding the inputs)")
    .option("--json", "print one JSON object on stdout")
    .action(
      (path: string, o: { out: string; saveDtype: string; maxShardSize: string; force?: boolean; json?: boolean }) => {
        if (!Object.hasOwn(DTYPES, o.saveDtype))
          throw new NrtError(`must be one of ${Object.keys(DTYPES).join(", ")}`, "--save-dtype");
        const maxShardBytes = parseSize(o.maxShardSize, "--max-shard-size");
        const dir = resolveModelDir(path);
        if (!isAdapterDir(dir))
          throw new NrtError("holds a whole model, not a LoRA adapter: there is nothing to merge", dir);
        const base = resolveBase(readAdapterConfig(dir).base, dir);
        checkOutput(o.out, { kind: "dir", force: o.force, inputDirs: [path, dir, base] });
        const r = mergeAdapter(dir, o.out, { dtype: DTYPES[o.saveDtype], maxShardBytes });
        const summary = { out: o.out, ...r };
        if (o.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
        else
          process.stderr.write(
            `wrote ${o.out}: ${r.base} + LoRA r ${r.rank}, alpha ${r.alpha} on ${r.targets.join(", ")} (${r.params} parameters, ${r.dtype})\n`,
          );
      },
    );
}
