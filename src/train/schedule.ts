/** Learning-rate schedules: linear warm-up, then constant or cosine decay to `minRatio`·lr. */
export type ScheduleKind = "constant" | "cosine";

export interface Schedule {
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  kind: ScheduleKind;
  /** final learning rate as a fraction of lr (cosine only) */
  minRatio: number;
}

/**
 * lr at 1-based step t: lr·t/warmup during warm-up; then constant, or
 * lr·(minRatio + (1 − minRatio)·½(1 + cos(π·p))) with p = (t − warmup)/(total − warmup).
 */
export function lrAt(s: Schedule, step: number): number {
  if (s.warmupSteps > 0 && step <= s.warmupSteps) return (s.lr * step) / s.warmupSteps;
  if (s.kind === "constant") return s.lr;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const p = Math.min(1, Math.max(0, (step - s.warmupSteps) / span));
  return s.lr * (s.minRatio + (1 - s.minRatio) * 0.5 * (1 + Math.cos(Math.PI * p)));
}
