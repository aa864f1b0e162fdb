import { expect } from "vitest";

/** Largest absolute difference and the index where it occurs. */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; at: number } {
  let diff = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= diff)) {
      diff = d;
      at = i;
    }
  }
  return { diff, at };
}

/** Asserts |a - b| <= atol + rtol·|b| elementwise, reporting the worst element on failure. */
export function expectAllclose(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  { atol = 1e-5, rtol = 1e-4, what = "" }: { atol?: number; rtol?: number; what?: string } = {},
): void {
  expect(a.length, `${what} length`).toBe(b.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < a.length; i++) {
    const excess = Math.abs(a[i] - b[i]) - (atol + rtol * Math.abs(b[i]));
    if (!(excess <= worstExcess)) {
      worstExcess = excess;
      worst = i;
    }
  }
  if (worst >= 0) {
    const { diff } = maxDiff(a, b);
    expect.fail(`${what}: element ${worst} is ${a[worst]}, expected ${b[worst]} (max |diff| ${diff.toExponential(3)})`);
  }
}
