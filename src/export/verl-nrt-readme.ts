/** The export's run.sh and README.md: how to run the recipe on it, and what is not exact. */
import type { VerlNrtOverrides } from "./verl-nrt-overrides.js";

/** What README.md says about the export. */
export interface ReadmeFacts {
  name: string;
  model: string;
  train: { file: string; rows: number };
  test: { file: string; rows: number } | null;
  settings: string;
  responseStartId: number;
  origin: "renamed" | "added" | "present";
  templateAdded: boolean;
  microBatch: number;
  overrides: VerlNrtOverrides;
}

/**
 * run.sh: starts recipe/nrt from the root of a checkout of the official code, with the data and model of this
 * directory (wherever it was moved), overrides.txt, the machine's settings from the environment, and any further
 * Hydra overrides given as arguments.
 */
export function runScript(hasTest: boolean, microBatch: number): string {
  const val = hasTest ? "test.parquet" : "train.parquet";
  return `#!/usr/bin/env bash
# Written by nrt export --format verl-nrt. Run it from the root of a checkout of sharkwyf/native-reasoning-models
# (the official NRT code, a verl fork):  MLP_WORKER_GPU=8 MLP_WORKER_NUM=1 bash path/to/this/run.sh [overrides]
set -euo pipefail
here="$(cd "$(dirname "\${BASH_SOURCE[0]}")" && pwd)"
mapfile -t overrides < <(grep -v -e '^#' -e '^[[:space:]]*$' "$here/overrides.txt")
micro="\${MICRO_BATCH_PER_GPU:-${microBatch}}"
python3 -m recipe.nrt.main_nrt \\
  "data.train_files='$here/train.parquet'" \\
  "data.val_files='$here/${val}'" \\
  "actor_rollout_ref.model.path='$here/model'" \\
  "\${overrides[@]}" \\
  actor_rollout_ref.rollout.name=vllm \\
  "actor_rollout_ref.rollout.tensor_model_parallel_size=\${ROLLOUT_TP:-1}" \\
  "actor_rollout_ref.rollout.gpu_memory_utilization=\${GPU_MEMORY_UTILIZATION:-0.5}" \\
  "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=$micro" \\
  "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=$micro" \\
  "trainer.n_gpus_per_node=\${MLP_WORKER_GPU:-1}" \\
  "trainer.nnodes=\${MLP_WORKER_NUM:-1}" \\
  "trainer.logger=\${LOGGER:-['console']}" \\
  "$@"
`;
}

const ORIGIN: Record<ReadmeFacts["origin"], string> = {
  renamed: "nrt's `<answer_start>` renamed (same id, same trained rows)",
  added: "added after the tokenizer's last id, its embedding and output rows copied from ⟨eos⟩'s",
  present: "already in the model",
};

/** README.md of the export directory. */
export function readmeText(f: ReadmeFacts): string {
  const notes = f.overrides.overrides.filter((o) => o.note).map((o) => `- \`${o.key}\`: ${o.note}.`);
  const unmapped = f.overrides.unmapped.map((u) => `- \`${u.setting}\` = ${JSON.stringify(u.value)}: ${u.why}.`);
  const warnings = f.overrides.warnings.map((w) => `- **${w}.**`);
  return `# ${f.name}: nrt data, model and settings for recipe/nrt (verl)

Written by \`nrt export --format verl-nrt\` from the model \`${f.model}\` and the settings of ${f.settings}.

| file | what |
|---|---|
| \`train.parquet\` | ${f.train.rows} rows of \`${f.train.file}\` in the recipe's columns |
${f.test ? `| \`test.parquet\` | ${f.test.rows} rows of \`${f.test.file}\` |\n` : ""}| \`model/\` | the model; \`<|response_start|>\` is token ${f.responseStartId}: ${ORIGIN[f.origin]}${f.templateAdded ? "; its chat template renders nrt's plain prompt, ⟨bos⟩ ⊕ question" : "; its own chat template"} |
| \`overrides.txt\` | the recipe's Hydra overrides matching the settings, each with the setting it comes from |
| \`run.sh\` | runs \`python3 -m recipe.nrt.main_nrt\` with all of it |

Columns: \`data_source\`, \`prompt\` and \`gen_prompt\` (list of {role, content}: the turns before the answer),
\`think_prefix\` (empty: nrt has no think marker, and the recipe never reads it), \`response_prefix\`
(\`<|response_start|>\`), \`reference_content\` (the answer; the recipe appends ⟨eos⟩), \`reward_model\`
({style, ground_truth}), \`ability\`, \`extra_info\` ({index, id, source, line, original_messages}).

## Run

On a GPU machine with the official code's requirements (verl, vLLM, CUDA), from the root of its checkout:

\`\`\`sh
MLP_WORKER_GPU=1 MLP_WORKER_NUM=1 bash path/to/${f.name}/run.sh
\`\`\`

More Hydra overrides may follow \`run.sh\`. The environment sets the machine: \`MLP_WORKER_GPU\`,
\`MLP_WORKER_NUM\` (GPUs per node, nodes; default 1, 1), \`MICRO_BATCH_PER_GPU\` (default ${f.microBatch}; it must
divide the ${"G·K"} sequences of a step per GPU), \`ROLLOUT_TP\` (vLLM tensor parallelism, 1),
\`GPU_MEMORY_UTILIZATION\` (0.5), \`LOGGER\` (\`['console']\`; \`['console','wandb']\` as the recipe's example).

## What is not the same as \`nrt train\`

${[...warnings, ...notes].join("\n") || "- Nothing found for these settings."}
- The recipe re-tokenises the decoded trace text before scoring it (nrt scores the sampled ids), and cuts the
  trace at the first \`<|…|>\` text in it, not at the first special token.

${unmapped.length > 0 ? `Settings with no counterpart in the recipe:\n\n${unmapped.join("\n")}\n` : ""}`;
}
