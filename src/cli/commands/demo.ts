import os from "node:os";
import type { Command } from "commander";
import { demo } from "../../demo/demo.js";
import { NrtError } from "../../errors.js";
import { isWorld, WORLDS } from "../../world/question.js";
import { parseIntArg } from "../args.js";

export function register(program: Command): void {
  program
    .command("demo")
    .description("post-train the shipped base with SFT, RLPR and NRT-WS and compare them on held-out questions")
    .option("-o, --out <dir>", "where the runs go", "runs/demo")
    .option("--world <name>", WORLDS.join(", "), "chain2")
    .option(
      "--threads <n>",
      "compute threads (methods train in parallel, one thread each)",
      String(os.availableParallelism()),
    )
    .option("--methods <list>", "comma-separated methods", "nrt-ws,rlpr,verifree,sft")
    .option("--steps <n>", "post-training steps per method", "200")
    .option("--eval-n <n>", "held-out questions", "400")
    .option("--seed <n>", "seed", "0")
    .option("--base <dir>", "base model (default: the shipped base of the world)")
    .option("--min-forced-accuracy <x>", "refuse a base whose forced-trace accuracy is lower", "0.6")
    .action(async (o: Record<string, string>) => {
      if (!isWorld(o.world)) throw new NrtError(`must be one of ${WORLDS.join(", ")}, got ${o.world}`, "--world");
      const { table } = await demo({
        out: o.out,
        world: o.world,
        threads: parseIntArg(o.threads, "--threads"),
        methods: o.methods
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean),
        steps: parseIntArg(o.steps, "--steps"),
        evalN: parseIntArg(o.evalN, "--eval-n"),
        seed: parseIntArg(o.seed, "--seed", 0),
        base: o.base,
        minForcedAccuracy: Number(o.minForcedAccuracy),
      });
      process.stdout.write(`${table}`);
    });
}
