import type { Command } from "commander";
import { NrtError } from "../../errors.js";
import { defaultPretrainConfig, pretrain } from "../../train/pretrain.js";
import { isWorld, WORLDS } from "../../world/question.js";
import { parseIntArg, parseKRange } from "../args.js";

export function register(program: Command): void {
  program
    .command("pretrain")
    .description("train a base model from scratch on a reasoning world (SPEC §7)")
    .requiredOption("--world <name>", WORLDS.join(", "))
    .requiredOption("-o, --out <dir>", "run directory; the model lands in DIR/final")
    .option("--steps <n>", "optimiser steps", "10000")
    .option("--batch-size <n>", "sequences per step", "32")
    .option("--k <range>", "number of variables, e.g. 3-6 (default 2-6 for chain, 3-6 for chain2 and chainlong)")
    .option("--trace-fraction <x>", "fraction of examples that show the trace", "0.25")
    .option("--lr <x>", "peak learning rate (cosine to 10%)", "0.002")
    .option("--seed <n>", "seed", "0")
    .option("--threads <n>", "compute threads", "1")
    .option("--hidden-size <n>", "hidden size", "128")
    .option("--num-layers <n>", "layers", "4")
    .option("--intermediate-size <n>", "MLP size", "256")
    .option("--no-progress", "no live progress display")
    .action((o: Record<string, string | boolean>) => {
      const world = String(o.world);
      if (!isWorld(world)) throw new NrtError(`must be one of ${WORLDS.join(", ")}, got ${world}`, "--world");
      const c = defaultPretrainConfig(world, o.out as string);
      if (o.k) [c.kMin, c.kMax] = parseKRange(o.k as string);
      Object.assign(c, {
        steps: parseIntArg(o.steps, "--steps"),
        batchSize: parseIntArg(o.batchSize, "--batch-size"),
        traceFraction: Number(o.traceFraction),
        lr: Number(o.lr),
        seed: parseIntArg(o.seed, "--seed", 0),
        threads: parseIntArg(o.threads, "--threads"),
        hiddenSize: parseIntArg(o.hiddenSize, "--hidden-size"),
        numLayers: parseIntArg(o.numLayers, "--num-layers"),
        intermediateSize: parseIntArg(o.intermediateSize, "--intermediate-size"),
        progress: o.progress !== false,
      });
      const t0 = Date.now();
      const dir = pretrain(c);
      process.stderr.write(`base model written to ${dir} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
    });
}
