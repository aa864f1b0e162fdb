import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { NrtError } from "../../src/errors.js";
import { parseHfConfig, toHfConfig } from "../../src/io/hf-config.js";
import { encodeSafetensors, parseSafetensors } from "../../src/io/safetensors.js";
import { llamaConfig } from "../../src/model/config.js";
import { concat, rawSafetensors } from "./_bytes.js";

/** Runs `f`; true if it returned, false if it threw an NrtError; anything else it throws fails the property. */
function parsesOrNrtError(f: () => unknown): boolean {
  try {
    f();
    return true;
  } catch (e) {
    if (e instanceof NrtError) return false;
    throw e;
  }
}

const valid = concat(
  encodeSafetensors(
    [
      { name: "a", shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
      { name: "b", shape: [1], data: new Float32Array([7]) },
    ],
    { format: "pt" },
  ),
);

/** Random header entries (sometimes valid, mostly not) over a random-length data section. */
const entry = fc.record(
  {
    dtype: fc.oneof(fc.constantFrom("F32", "F16", "BF16", "I64", "f32"), fc.jsonValue()),
    shape: fc.oneof(fc.array(fc.nat(6), { maxLength: 3 }), fc.jsonValue()),
    data_offsets: fc.oneof(
      fc.tuple(fc.nat(40), fc.nat(40)),
      fc.array(fc.integer({ min: -2, max: 40 })),
      fc.jsonValue(),
    ),
  },
  { requiredKeys: [] },
);
const header = fc.dictionary(fc.oneof(fc.string(), fc.constant("__metadata__")), fc.oneof(entry, fc.jsonValue()), {
  maxKeys: 4,
});

describe("parseSafetensors never throws anything but NrtError", () => {
  it("random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        parsesOrNrtError(() => parseSafetensors(b, "f"));
      }),
      { numRuns: 500 },
    );
  });

  it("a valid file with bytes overwritten, truncated or extended", () => {
    const mutation = fc.record({
      writes: fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      cut: fc.nat(valid.length + 8),
    });
    fc.assert(
      fc.property(mutation, ({ writes, cut }) => {
        const b = new Uint8Array(Math.max(cut, 0));
        b.set(valid.subarray(0, Math.min(cut, valid.length)));
        for (const [i, v] of writes) if (i < b.length) b[i] = v;
        const ok = parsesOrNrtError(() => parseSafetensors(b, "f"));
        if (writes.length === 0 && cut === valid.length) expect(ok).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it("random headers: a parse that succeeds returns data of length product(shape)", () => {
    fc.assert(
      fc.property(header, fc.nat(40), (h, n) => {
        const bytes = rawSafetensors(h, new Uint8Array(n));
        let parsed: ReturnType<typeof parseSafetensors> | undefined;
        parsesOrNrtError(() => {
          parsed = parseSafetensors(bytes, "f");
        });
        for (const t of parsed?.tensors.values() ?? []) {
          expect(t.data.length).toBe(t.shape.reduce((a, d) => a * d, 1));
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe("parseSafetensors reads every well-formed file", () => {
  it("random tensors of every dtype, laid out in shuffled order, parse back with their shapes and F32 bits", () => {
    const tensor = fc.record({
      dtype: fc.constantFrom("F32", "F16", "BF16"),
      shape: fc.array(fc.nat(3), { maxLength: 3 }),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string(), { maxLength: 5 }),
        fc.array(tensor, { maxLength: 5 }),
        fc.nat(),
        (names, ts, seed) => {
          const size = { F32: 4, F16: 2, BF16: 2 } as const;
          const items = names.slice(0, ts.length).map((name, i) => ({ name, ...ts[i] }));
          const h: Record<string, unknown> = Object.create(null);
          let offset = 0;
          for (const t of items) {
            const n = t.shape.reduce((a, d) => a * d, 1) * size[t.dtype];
            h[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + n] };
            offset += n;
          }
          const data = new Uint8Array(offset).map((_, i) => (i * 31 + seed) & 0x7f); // keeps F32 finite and non-NaN
          const { tensors } = parseSafetensors(rawSafetensors(h, data), "f");
          expect([...tensors.keys()].sort()).toEqual(items.map((t) => t.name).sort());
          for (const t of items) {
            const got = tensors.get(t.name)!;
            expect(got.shape).toEqual(t.shape);
            const [begin, end] = (h[t.name] as { data_offsets: number[] }).data_offsets;
            if (t.dtype === "F32") expect(new Uint8Array(got.data.buffer)).toEqual(data.slice(begin, end));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("parseHfConfig never throws anything but NrtError", () => {
  const base = toHfConfig(llamaConfig({ numKvHeads: 2, eosTokenId: 1 }));
  const mistral = toHfConfig(llamaConfig({ modelType: "mistral", headDim: 8, slidingWindow: 4 }));

  it("random JSON values", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (j) => {
        parsesOrNrtError(() => parseHfConfig(j, "c"));
      }),
      { numRuns: 500 },
    );
  });

  it("valid configs with keys replaced, removed or added: what parses is a consistent config that round-trips", () => {
    const keys = [...Object.keys(base), "sliding_window", "rope_parameters", "extra"];
    const edits = fc.dictionary(
      fc.constantFrom(...keys),
      fc.oneof(fc.jsonValue(), fc.constant(undefined), fc.integer({ min: -2, max: 70 })),
      { maxKeys: 3 },
    );
    fc.assert(
      fc.property(fc.constantFrom(base, mistral), edits, (start, edit) => {
        const json = JSON.parse(JSON.stringify({ ...start, ...edit }));
        let c: ReturnType<typeof parseHfConfig> | undefined;
        parsesOrNrtError(() => {
          c = parseHfConfig(json, "c");
        });
        if (!c) return;
        expect(c.numHeads % c.numKvHeads).toBe(0);
        expect(c.headDim % 2).toBe(0);
        expect(parseHfConfig(toHfConfig(c), "c")).toEqual(c);
      }),
      { numRuns: 1000 },
    );
  });
});
