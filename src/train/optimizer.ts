import type { TrainConfig } from "../config/train-config.js";
import type { Model } from "../model/model.js";
import { type AdamWSettings, type AdamWState, native } from "../model/native.js";
import { lrAt, type Schedule } from "./schedule.js";

/** The AdamW settings of `nrt train`'s next update: the schedule's lr at step updates + 1, the config's others. */
export function adamwSettings(cfg: TrainConfig, updates: number): AdamWSettings {
  const schedule: Schedule = {
    lr: cfg.lr,
    warmupSteps: cfg.warmupSteps,
    totalSteps: cfg.steps,
    kind: cfg.schedule,
    minRatio: cfg.minLrRatio,
  };
  return {
    lr: lrAt(schedule, updates + 1),
    beta1: cfg.beta1,
    beta2: cfg.beta2,
    eps: cfg.adamEps,
    weightDecay: cfg.weightDecay,
    clip: cfg.clip,
  };
}

/**
 * AdamW over the model's flat buffer, for pretraining: gradients and both moments share the parameters' layout, and
 * one native call clips and updates everything. Holds the state a checkpoint must keep (m, v, step).
 */
export class AdamW implements AdamWState {
  readonly grads: Float32Array;
  readonly m: Float32Array;
  readonly v: Float32Array;
  step = 0;

  /** `settings`: all but the learning rate, which `schedule` gives per step */
  constructor(
    readonly model: Model,
    readonly settings: Omit<AdamWSettings, "lr">,
    readonly schedule: Schedule,
  ) {
    this.grads = model.zeros();
    this.m = model.zeros();
    this.v = model.zeros();
  }

  zeroGrad(): void {
    this.grads.fill(0);
  }

  /** One update with the scheduled learning rate; returns {lr, gradNorm} (norm before clipping). */
  update(): { lr: number; gradNorm: number } {
    this.step++;
    const lr = lrAt(this.schedule, this.step);
    const gradNorm = native().adamw(this.model.nativeConfig, this.model.trainable, this.grads, this.m, this.v, {
      lr,
      ...this.settings,
      step: this.step,
    });
    return { lr, gradNorm };
  }
}
