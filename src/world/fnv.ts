/** 32-bit FNV-1a offset basis. */
const OFFSET_BASIS = 0x811c9dc5;
/** 32-bit FNV prime. */
const PRIME = 0x01000193;

const utf8 = new TextEncoder();

/**
 * 32-bit FNV-1a over the UTF-8 bytes of `text`: h = 0x811c9dc5; for each byte b: h = (h ⊕ b) · 0x01000193 mod 2³².
 * Returns an unsigned integer in [0, 2³²).
 */
export function fnv1a32(text: string): number {
  let h = OFFSET_BASIS;
  for (const b of utf8.encode(text)) {
    h = Math.imul(h ^ b, PRIME) >>> 0;
  }
  return h >>> 0;
}

/** SPEC §7 held-out split: a question is reserved for evaluation when fnv1a32(question) ≡ 0 (mod 10). */
export function isReserved(question: string): boolean {
  return fnv1a32(question) % 10 === 0;
}
