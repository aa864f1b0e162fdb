import { Command } from "commander";
import { NrtError } from "../errors.js";

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

main(process.argv).catch((e: unknown) => {
  if (e instanceof NrtError) {
    process.stderr.write(`nrt: error: ${e.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`nrt: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
