import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { NrtError } from "../../errors.js";
import { loadModelDir, resolveModelDir } from "../../io/model-dir.js";
import { writeSafetensors } from "../../io/safetensors.js";
import { setThreads } from "../../model/native.js";
import { gradBatch, parseGradBatch } from "../../train/grad.js";

export function register(program: Command): void {
  program
    .command("grad")
    .description("write ∂L/∂θ and the SPEC §3 numbers of one batch (SPEC §6), so other implementations can check nrt")
    .argument("[model]", "model directory")
    .option("--model <dir>", "model directory (or run directory)")
    .requiredOption("--batch <file>", "batch JSON (SPEC §6)")
    .requiredOption("-o, --out <dir>", "output directory: grads.safetensors and stats.json")
    .option("--threads <n>", "compute threads", "1")
    .option("--json", "print the stats as one JSON object on stdout")
    .action(
      (pos: string | undefined, o: { model?: string; batch: string; out: string; threads: string; json?: boolean }) => {
        const path = o.model ?? pos;
        if (!path) throw new NrtError("a model is required (--model DIR)", "nrt grad");
        setThreads(Number(o.threads));
        const { model } = loadModelDir(resolveModelDir(path));
        let json: unknown;
        try {
          json = JSON.parse(readFileSync(o.batch, "utf8"));
        } catch (e) {
          throw new NrtError(`cannot read batch JSON (${(e as Error).message})`, o.batch);
        }
        const batch = parseGradBatch(json, model.config.vocabSize, o.batch);
        const grads = model.zeros();
        const stats = gradBatch(model, batch, grads);
        mkdirSync(o.out, { recursive: true });
        writeSafetensors(
          join(o.out, "grads.safetensors"),
          model.table.map((p) => ({ name: p.name, shape: p.shape, data: model.view(p.name, grads) })),
        );
        writeFileSync(join(o.out, "stats.json"), `${JSON.stringify(stats)}\n`);
        if (o.json) process.stdout.write(`${JSON.stringify(stats)}\n`);
        else process.stderr.write(`loss ${stats.loss}; wrote ${join(o.out, "grads.safetensors")} and stats.json\n`);
      },
    );
}
