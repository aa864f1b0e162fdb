// A run through a remote engine against the same run in process: the same steps, every metric to 4 decimals (but
// trace/entropy: servers report no entropies, and nrt logs the sampled tokens' surprisal instead), and the same
// final weights to float32 tolerance.
import { join } from "node:path";
import { expect } from "vitest";
import { loadModelDir } from "../../src/io/model-dir.js";
import { expectAllclose } from "../helpers/allclose.js";
import { metrics, withoutTiming } from "../reliability/_setup.js";

const comparable = (m: Record<string, number>) => {
  const { "trace/entropy": _, ...rest } = withoutTiming(m);
  return rest;
};

export function expectSameRun(out: string, ref: string, what: string): void {
  const got = metrics(out).map(comparable);
  const want = metrics(ref).map(comparable);
  expect(
    got.map((m) => m.step),
    `${what}: steps`,
  ).toEqual(want.map((m) => m.step));
  for (const [i, row] of want.entries()) {
    expect(Object.keys(got[i]).sort(), `${what}: step ${i + 1} keys`).toEqual(Object.keys(row).sort());
    for (const [k, v] of Object.entries(row)) expect(got[i][k], `${what}: step ${i + 1} ${k}`).toBeCloseTo(v, 4);
  }
  expectAllclose(loadModelDir(join(out, "final")).model.params, loadModelDir(join(ref, "final")).model.params, {
    atol: 1e-6,
    what: `${what}: final weights`,
  });
}
