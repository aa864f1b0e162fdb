import type { TrainConfig } from "../config/train-config.js";
import type { Example } from "../data/format.js";
import { AUTO_ACTIVATION_BYTES } from "../engine/micro-batch.js";
import { activationBytes, checkFits, samplerBytes } from "../model/memory.js";
import type { Model } from "../model/model.js";

/**
 * Refuses G·K traces (or G SFT sequences) a step of which the native engine could not hold in memory: the weights,
 * the gradients and AdamW moments of what is trained (the adapter's alone with LoRA), one micro-batch's activations
 * and the sampler's KV cache.
 */
export function checkStepFits(model: Model, cfg: TrainConfig, examples: readonly Example[], sft: boolean): void {
  const c = model.config;
  let longest = 0;
  for (const e of examples) longest = Math.max(longest, e.prompt.length + e.answer.length + 1);
  const seqLen = longest + (sft ? 0 : cfg.maxTraceTokens);
  const seqs = cfg.promptsPerStep * (sft ? 1 : cfg.groupSize + 1); // + the empty trace of each question
  const perToken = activationBytes(c, 1, seqLen);
  const limit = cfg.microBatchTokens > 0 ? cfg.microBatchTokens : Math.floor(AUTO_ACTIVATION_BYTES / perToken);
  const tokens = Math.min(seqs * seqLen, Math.max(seqLen, limit));
  const bytes =
    4 * (model.params.length + 3 * model.trainable.length) +
    activationBytes(c, tokens, seqLen) +
    (sft ? 0 : samplerBytes(c, cfg.promptsPerStep * cfg.groupSize, seqLen));
  const what = sft
    ? `a step of ${cfg.promptsPerStep} sequences`
    : `a step of ${cfg.promptsPerStep} × ${cfg.groupSize} traces`;
  checkFits(
    bytes,
    what,
    sft ? "--prompts-per-step or --micro-batch-tokens" : "--prompts-per-step, --group-size or --micro-batch-tokens",
  );
}
