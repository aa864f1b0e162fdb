/** Sequences laid end to end for the engine, with where each one starts. */
export class Packed {
  readonly tokens: number[] = [];
  readonly lens: number[] = [];
  readonly starts: number[] = [];

  /** appends a sequence; returns its start offset */
  add(seq: readonly number[]): number {
    const at = this.tokens.length;
    this.starts.push(at);
    this.lens.push(seq.length);
    for (const t of seq) this.tokens.push(t);
    return at;
  }

  get length(): number {
    return this.tokens.length;
  }

  arrays(): { tokens: Int32Array; lens: Int32Array } {
    return { tokens: Int32Array.from(this.tokens), lens: Int32Array.from(this.lens) };
  }
}

/** The training sequence of SPEC §2: prompt ⊕ z ⊕ ⟨answer_start⟩ ⊕ y* (y* ends with ⟨eos⟩). */
export function nrtSequence(
  prompt: readonly number[],
  trace: readonly number[],
  answerStartId: number,
  answer: readonly number[],
): number[] {
  return [...prompt, ...trace, answerStartId, ...answer];
}
