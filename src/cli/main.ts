import { Command } from "commander";
import { oneLineError } from "./one-line.js";

/** Each command lives in its own file, loaded only when it runs. */
type Loader = () => Promise<{ register: (program: Command) => void }>;

const commands: Record<string, Loader> = {
  demo: () => import("./commands/demo.js"),
  experiment: () => import("./commands/experiment.js"),
  train: () => import("./commands/train.js"),
  config: () => import("./commands/config.js"),
  pretrain: () => import("./commands/pretrain.js"),
  eval: () => import("./commands/eval.js"),
  sample: () => import("./commands/sample.js"),
  chat: () => import("./commands/chat.js"),
  grad: () => import("./commands/grad.js"),
  world: () => import("./commands/world.js"),
  import: () => import("./commands/import.js"),
  export: () => import("./commands/export.js"),
  merge: () => import("./commands/merge.js"),
  report: () => import("./commands/report.js"),
};

async function main(argv: string[]): Promise<void> {
  const program = new Command("nrt")
    .description("Native Reasoning Training: teach a language model to reason from question–answer pairs")
    .version("0.1.0")
    .showHelpAfterError();
  const name = argv[2];
  const chosen = name && Object.hasOwn(commands, name) ? [name] : Object.keys(commands);
  for (const c of chosen) (await commands[c]()).register(program);
  await program.parseAsync(argv);
}

/** Prints `e` as one line (exit 2), or with its stack when it is a bug (exit 1). */
function fail(e: unknown): never {
  const line = oneLineError(e);
  if (line) {
    process.stderr.write(`nrt: error: ${line.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`nrt: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
}

// stdout into a full disk or a closed pipe: one line (a reader that stopped reading, as `| head` does, is no error)
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(0);
  fail(Object.assign(e, { path: "stdout" }));
});

main(process.argv).catch(fail);
