/** Sequences first … first + count − 1 of a batch, starting at token `at`. */
export interface Chunk {
  first: number;
  count: number;
  at: number;
}

/**
 * Splits a batch's sequences (their lengths `lens`) into runs of whole sequences with at most `maxTokens` tokens and
 * `maxCount` sequences each; a sequence longer than maxTokens goes alone.
 */
export function chunkSequences(lens: Int32Array, maxTokens: number, maxCount = Number.POSITIVE_INFINITY): Chunk[] {
  const out: Chunk[] = [];
  let cur: Chunk = { first: 0, count: 0, at: 0 };
  let size = 0;
  let at = 0;
  for (let s = 0; s < lens.length; s++) {
    if (cur.count > 0 && (size + lens[s] > maxTokens || cur.count === maxCount)) {
      out.push(cur);
      cur = { first: s, count: 0, at };
      size = 0;
    }
    cur.count++;
    size += lens[s];
    at += lens[s];
  }
  if (cur.count > 0) out.push(cur);
  return out;
}
