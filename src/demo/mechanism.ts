/**
 * What a run's metrics say about why its method learned or did not: the reward's magnitude, the advantage's
 * spread, the share of groups with no reward variance (no gradient), and the trace term's share of the update
 * (`grad_norm/{trace,answer}`, logged with --term-grad-norms). Read from metrics.jsonl only.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface Mechanism {
  /** mean over steps of reward/mean (R, before any baseline) */
  rewardMean: number;
  /** mean over steps of adv/std */
  advStd: number;
  /** mean over steps of adv/zero_std_frac */
  zeroStdFrac: number;
  /** mean over the logged steps of grad_norm/trace, /answer, /format; null when the run did not log them */
  gradTrace: number | null;
  gradAnswer: number | null;
  gradFormat: number | null;
  /** gradTrace / (gradTrace + gradAnswer): how much of the update is the policy gradient on the trace */
  traceShare: number | null;
}

const meanOf = (rows: readonly Record<string, number>[], key: string): number | null => {
  const xs = rows.map((r) => r[key]).filter((x): x is number => typeof x === "number" && Number.isFinite(x));
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
};

/** The mechanism figures of a run's metric lines; null for a run without rewards (SFT). */
export function mechanismOf(rows: readonly Record<string, number>[]): Mechanism | null {
  const rewardMean = meanOf(rows, "reward/mean");
  if (rewardMean === null) return null;
  const gradTrace = meanOf(rows, "grad_norm/trace");
  const gradAnswer = meanOf(rows, "grad_norm/answer");
  const sum = (gradTrace ?? 0) + (gradAnswer ?? 0);
  return {
    rewardMean,
    advStd: meanOf(rows, "adv/std") ?? 0,
    zeroStdFrac: meanOf(rows, "adv/zero_std_frac") ?? 0,
    gradTrace,
    gradAnswer,
    gradFormat: meanOf(rows, "grad_norm/format"),
    traceShare: gradTrace === null || gradAnswer === null ? null : sum > 0 ? gradTrace / sum : 0,
  };
}

/** `mechanismOf` the run directory's metrics.jsonl (null when it has none or no rewards). */
export function readMechanism(runDir: string): Mechanism | null {
  const p = join(runDir, "metrics.jsonl");
  if (!existsSync(p)) return null;
  const rows = readFileSync(p, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, number>);
  return mechanismOf(rows);
}
