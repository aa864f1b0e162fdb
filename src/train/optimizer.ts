import type { Model } from "../model/model.js";
import { native } from "../model/native.js";
import { lrAt, type Schedule } from "./schedule.js";

export interface AdamWSettings {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** global gradient-norm clip; 0 disables */
  clip: number;
}

/**
 * AdamW over the model's flat buffer: gradients and both moments share the parameters' layout, and one native
 * call clips and updates everything. Holds the state a checkpoint must keep (m, v, step).
 */
export class AdamW {
  readonly grads: Float32Array;
  readonly m: Float32Array;
  readonly v: Float32Array;
  step = 0;

  constructor(
    readonly model: Model,
    readonly settings: AdamWSettings,
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
    const gradNorm = native().adamw(this.model.config, this.model.params, this.grads, this.m, this.v, {
      lr,
      ...this.settings,
      step: this.step,
    });
    return { lr, gradNorm };
  }
}
