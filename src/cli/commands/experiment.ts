import os from "node:os";
import type { Command } from "commander";
import { experiment } from "../../demo/experiment.js";
import { NrtError } from "../../errors.js";
import { isWorld, WORLDS, type WorldName } from "../../world/question.js";
import { parseIntArg } from "../args.js";

export function register(program: Command): void {
  program
    .command("experiment")
    .description("methods × seeds × worlds from the shipped bases, with a results table (mean and spread)")
    .option("-o, --out <dir>", "where the runs go (finished runs are reused)", "runs/experiment")
    .option("--worlds <list>", "comma-separated worlds", "chain2,chain")
    .option("--world <name>", "one world (the same as --worlds NAME)")
    .option("--methods <list>", "comma-separated methods", "sft,rlpr,verifree,nrt-gm,jlb,nrt-ws")
    .option("--seeds <list>", "comma-separated seeds", "0,1,2")
    .option("--steps <n>", "post-training steps per run", "200")
    .option("--eval-n <n>", "held-out questions per world", "400")
    .option("--threads <n>", "runs in parallel (one thread each)", String(os.availableParallelism()))
    .action(async (o: Record<string, string>) => {
      const worlds = (o.world ?? o.worlds).split(",").map((s) => s.trim());
      for (const w of worlds)
        if (!isWorld(w)) throw new NrtError(`unknown world ${w} (${WORLDS.join(", ")})`, "--worlds");
      const { table } = await experiment({
        out: o.out,
        worlds: worlds as WorldName[],
        methods: o.methods.split(",").map((s) => s.trim()),
        seeds: o.seeds.split(",").map((s) => parseIntArg(s, "--seeds", 0)),
        steps: parseIntArg(o.steps, "--steps"),
        evalN: parseIntArg(o.evalN, "--eval-n"),
        threads: parseIntArg(o.threads, "--threads"),
      });
      process.stdout.write(`${table}\n`);
    });
}
