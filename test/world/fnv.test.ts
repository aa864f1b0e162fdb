import { describe, expect, it } from "vitest";
import { fnv1a32, isReserved } from "../../src/world/fnv.js";

/** Independent BigInt reference: h = 0x811c9dc5; h = ((h ^ b) * 0x01000193) mod 2^32 over UTF-8 bytes. */
function reference(text: string): number {
  let h = 0x811c9dc5n;
  for (const b of Buffer.from(text, "utf8")) h = ((h ^ BigInt(b)) * 0x01000193n) % 0x100000000n;
  return Number(h);
}

describe("fnv1a32", () => {
  it("matches the standard FNV-1a 32-bit test vectors", () => {
    expect(fnv1a32("")).toBe(0x811c9dc5);
    expect(fnv1a32("a")).toBe(0xe40c292c);
    expect(fnv1a32("foobar")).toBe(0xbf9cf968);
  });

  it("hashes UTF-8 bytes, not UTF-16 code units", () => {
    for (const s of ["é", "ü😀", "a7,b+4,c*6,d+2;d", "a7,b+4,c*6,d+2;b,d", "x".repeat(1000)]) {
      expect(fnv1a32(s)).toBe(reference(s));
    }
    expect(fnv1a32("é")).not.toBe(fnv1a32("\u00e9".normalize("NFD")));
  });

  it("returns unsigned 32-bit integers", () => {
    for (let i = 0; i < 200; i++) {
      const h = fnv1a32(`q${i}`);
      expect(Number.isInteger(h) && h >= 0 && h < 2 ** 32).toBe(true);
      expect(h).toBe(reference(`q${i}`));
    }
  });
});

describe("isReserved", () => {
  it("is hash % 10 === 0", () => {
    let reserved = 0;
    for (let i = 0; i < 2000; i++) {
      const q = `a${i % 10},b+${(i % 9) + 1};b${i}`;
      expect(isReserved(q)).toBe(reference(q) % 10 === 0);
      if (isReserved(q)) reserved++;
    }
    expect(reserved).toBeGreaterThan(120);
    expect(reserved).toBeLessThan(280);
  });
});
