import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { NrtError } from "../../errors.js";
import { writeFileAtomic } from "../../io/atomic.js";
import { loadModel } from "../../io/load.js";
import { isAdapterDir, loadModelDir, resolveModelDir } from "../../io/model-dir.js";
import { checkOutput } from "../../io/output.js";
import { LIMITS, readTextLimited } from "../../io/read.js";
import { writeSafetensors } from "../../io/safetensors.js";
import { setThreads } from "../../model/native.js";
import { gradBatch, parseGradBatch } from "../../train/grad.js";
import { parseIntArg } from "../args.js";

export function register(program: Command): void {
  program
    .command("grad")
    .description("write ∂L/∂θ and the SPEC §3 numbers of one batch (SPEC §6), so other implementations can check nrt")
    .argument("[model]", "model directory (a LoRA adapter directory: the adapter's gradients)")
    .option("--model <dir>", "model directory (or run directory)")
    .requiredOption("--batch <file>", "batch JSON (SPEC §6)")
    .requiredOption("-o, --out <dir>", "output directory: grads.safetensors and stats.json")
    .option("--threads <n>", "compute threads", "1")
    .option("--force", "overwrite existing grads.safetensors and stats.json in the output directory")
    .option("--json", "print the stats as one JSON object on stdout")
    .action(
      (
        pos: string | undefined,
        o: { model?: string; batch: string; out: string; threads: string; json?: boolean; force?: boolean },
      ) => {
        const path = o.model ?? pos;
        if (!path) throw new NrtError("a model is required (--model DIR)", "nrt grad");
        for (const f of ["grads.safetensors", "stats.json"])
          checkOutput(
            join(o.out, f),
            { kind: "file", force: o.force, inputFiles: [o.batch], inputDirs: [path] },
            "--out",
          );
        setThreads(parseIntArg(o.threads, "--threads"));
        const dir = resolveModelDir(path);
        const model = isAdapterDir(dir) ? loadModel(dir).model : loadModelDir(dir).model;
        let json: unknown;
        const text = readTextLimited(o.batch, "batch JSON", LIMITS.batchBytes);
        try {
          json = JSON.parse(text);
        } catch (e) {
          throw new NrtError(`cannot read batch JSON (${(e as Error).message})`, o.batch);
        }
        const batch = parseGradBatch(json, model.config.vocabSize, o.batch);
        const grads = model.zeros();
        const stats = gradBatch(model, batch, grads);
        mkdirSync(o.out, { recursive: true });
        // with an adapter, ∂L/∂θ of its tensors (PEFT's names): the base is frozen
        const a = model.adapter;
        writeSafetensors(
          join(o.out, "grads.safetensors"),
          a
            ? a.table.map((p) => ({ name: p.name, shape: p.shape, data: a.view(p.name, grads) }))
            : model.table.map((p) => ({ name: p.name, shape: p.shape, data: model.view(p.name, grads) })),
        );
        writeFileAtomic(join(o.out, "stats.json"), `${JSON.stringify(stats)}\n`);
        if (o.json) process.stdout.write(`${JSON.stringify(stats)}\n`);
        else process.stderr.write(`loss ${stats.loss}; wrote ${join(o.out, "grads.safetensors")} and stats.json\n`);
      },
    );
}
