/**
 * The test oracle: llama2.c's `encode` from run.c (karpathy/llama2.c), re-implemented line for line over bytes,
 * so that the tokenizer.json nrt builds can be checked against the algorithm it replaces.
 */
import type { Llama2cVocab } from "../../src/import/llama2c-tokenizer.js";

/** run.c `encode(t, text, bos, eos=0, …)`: dummy-prefix space, code points (else bytes + 3), best-score merges. */
export function llama2cEncode(v: Llama2cVocab, text: string, bos: boolean): number[] {
  // the vocabulary as C strings: bytes in a latin1 JS string, so that concatenation and lookup are bytewise
  const pieces = v.pieces.map((p) => Buffer.from(p, "utf8").toString("latin1"));
  const lookup = new Map<string, number>();
  pieces.forEach((p, id) => {
    lookup.set(p, id); // str_lookup: bsearch over unique strings
  });
  const strLookup = (s: string) => lookup.get(s) ?? -1;
  const bytes = Buffer.from(text, "utf8");
  const tokens: number[] = [];
  if (bos) tokens.push(1);
  if (bytes.length > 0) tokens.push(strLookup(" "));
  let buf: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if ((c & 0xc0) !== 0x80) buf = [];
    buf.push(c);
    const next = i + 1 < bytes.length ? bytes[i + 1] : 0;
    if ((next & 0xc0) === 0x80 && buf.length < 4) continue;
    const id = strLookup(Buffer.from(buf).toString("latin1"));
    if (id !== -1) tokens.push(id);
    else for (const b of buf) tokens.push(b + 3);
    buf = [];
  }
  for (;;) {
    let bestScore = Math.fround(-1e10);
    let bestId = -1;
    let bestIdx = -1;
    for (let i = 0; i < tokens.length - 1; i++) {
      const id = strLookup(pieces[tokens[i]] + pieces[tokens[i + 1]]);
      if (id !== -1 && v.scores[id] > bestScore) {
        bestScore = v.scores[id];
        bestId = id;
        bestIdx = i;
      }
    }
    if (bestIdx === -1) break;
    tokens.splice(bestIdx, 2, bestId);
  }
  return tokens;
}
