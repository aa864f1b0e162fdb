import { PHRASINGS } from "./question.js";

/** One sentence of a chainlong answer in any of the four SPEC §7 phrasings; groups: (variable, digit) per phrasing. */
const SENTENCE =
  /(?:([a-j]) is ([0-9])\.|([a-j]) = ([0-9])\.|the value of ([a-j]) is ([0-9])\.|([a-j]) equals ([0-9])\.)/y;

/**
 * Parse a chainlong answer (SPEC §7): sentences separated by single spaces, each matching one of the four phrasings
 * exactly (`v is n.` · `v = n.` · `the value of v is n.` · `v equals n.`). Returns the (variable, value) pairs in
 * order, or null when any part of the text is not such a sentence (a stray space, a missing full stop, another
 * wording, an empty text).
 */
export function parseLongAnswer(text: string): [string, number][] | null {
  const pairs: [string, number][] = [];
  let at = 0;
  for (;;) {
    SENTENCE.lastIndex = at;
    const m = SENTENCE.exec(text);
    if (!m) return null;
    const i = [1, 3, 5, 7].find((g) => m[g] !== undefined)!;
    pairs.push([m[i], Number(m[i + 1])]);
    at = SENTENCE.lastIndex;
    if (at === text.length) return pairs;
    if (text[at] !== " ") return null;
    at++;
  }
}

/** True when `predicted` parses and its (variable, value) pairs equal those of `reference`, in order. */
export function longAnswerCorrect(predicted: string, reference: string): boolean {
  const p = parseLongAnswer(predicted);
  const r = parseLongAnswer(reference);
  return p !== null && r !== null && p.length === r.length && p.every(([v, n], i) => v === r[i][0] && n === r[i][1]);
}

/** Longest sentence a chainlong answer can have, in characters (the `the value of v is n.` phrasing), plus its space. */
export const LONGEST_SENTENCE = Math.max(...PHRASINGS.map((f) => f("b", 0).length)) + 1;
