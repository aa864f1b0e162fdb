import { Rng } from "../util/rng.js";

/**
 * The questions of each step, a pure function of (dataset size, G, seed, step): epochs are seeded permutations
 * laid end to end, so a resumed run sees exactly the batches an uninterrupted one would.
 */
export class DataOrder {
  private readonly perms = new Map<number, number[]>();

  constructor(
    private readonly n: number,
    private readonly perStep: number,
    private readonly seed: number,
  ) {}

  private perm(epoch: number): number[] {
    let p = this.perms.get(epoch);
    if (!p) {
      p = new Rng((this.seed * 2654435761 + epoch * 40503 + 1) >>> 0).shuffle([...Array(this.n).keys()]);
      this.perms.clear();
      this.perms.set(epoch, p);
    }
    return p;
  }

  /** indices of the examples of 1-based step `step` */
  batch(step: number): number[] {
    const out: number[] = [];
    for (let j = 0; j < this.perStep; j++) {
      const pos = (step - 1) * this.perStep + j;
      out.push(this.perm(Math.floor(pos / this.n))[pos % this.n]);
    }
    return out;
  }
}

/** The sampler seed of a step: distinct per (run seed, step), so resuming needs no sampler state. */
export function stepSeed(seed: number, step: number): number {
  return (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(step, 0x85ebca6b)) >>> 0;
}
