import type { Command } from "commander";
import { NrtError } from "../../errors.js";
import { writeFileAtomic } from "../../io/atomic.js";
import { checkOutput } from "../../io/output.js";
import { generate, toJsonl } from "../../world/chain.js";
import { isWorld, WORLDS } from "../../world/question.js";
import { parseIntArg, parseKRange } from "../args.js";

export function register(program: Command): void {
  program
    .command("world")
    .description("generate question–answer data of a reasoning world (SPEC §7) as JSON Lines")
    .argument("<world>", WORLDS.join(", "))
    .option("--split <split>", "train or eval (eval: only reserved questions)", "train")
    .option("--n <n>", "number of records", "1000")
    .option("--k <range>", "number of variables: one value or a range like 3-6", "3-6")
    .option("--seed <n>", "seed", "0")
    .option("--with-trace", "add the reasoning trace as a field `trace`")
    .option("-o, --out <file>", "output file (default: stdout)")
    .option("--force", "overwrite an existing output file")
    .action(
      (
        world: string,
        o: { split: string; n: string; k: string; seed: string; withTrace?: boolean; out?: string; force?: boolean },
      ) => {
        if (!isWorld(world))
          throw new NrtError(`unknown world ${JSON.stringify(world)} (${WORLDS.join(", ")})`, "nrt world");
        if (o.split !== "train" && o.split !== "eval")
          throw new NrtError(`must be train or eval, got ${o.split}`, "--split");
        if (o.out) checkOutput(o.out, { kind: "file", force: o.force });
        const text = toJsonl(
          generate({
            world,
            split: o.split,
            n: parseIntArg(o.n, "--n", 0),
            k: parseKRange(o.k),
            seed: parseIntArg(o.seed, "--seed", 0),
            withTrace: Boolean(o.withTrace),
          }),
        );
        if (o.out) writeFileAtomic(o.out, text);
        else process.stdout.write(text);
      },
    );
}
