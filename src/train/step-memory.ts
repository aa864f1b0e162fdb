import type { TrainConfig } from "../config/train-config.js";
import type { Example } from "../data/format.js";
import type { ModelConfig } from "../model/config.js";
import { activationBytes, checkFits, samplerBytes } from "../model/memory.js";

/** Refuses G·K traces (or G SFT sequences) a step of which the native engine could not hold in memory. */
export function checkStepFits(c: ModelConfig, cfg: TrainConfig, examples: readonly Example[], sft: boolean): void {
  let longest = 0;
  for (const e of examples) longest = Math.max(longest, e.prompt.length + e.answer.length + 1);
  const seqLen = longest + (sft ? 0 : cfg.maxTraceTokens);
  const seqs = cfg.promptsPerStep * (sft ? 1 : cfg.groupSize + 1); // + the empty trace of each question
  const bytes =
    activationBytes(c, seqs * seqLen, seqLen) + (sft ? 0 : samplerBytes(c, cfg.promptsPerStep * cfg.groupSize, seqLen));
  const what = sft
    ? `a step of ${cfg.promptsPerStep} sequences`
    : `a step of ${cfg.promptsPerStep} × ${cfg.groupSize} traces`;
  checkFits(bytes, what, sft ? "--prompts-per-step" : "--prompts-per-step or --group-size");
}
