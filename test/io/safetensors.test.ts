import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NrtError } from "../../src/errors.js";
import { encodeSafetensors, parseSafetensors, readSafetensors, writeSafetensors } from "../../src/io/safetensors.js";
import { concat, rawSafetensors, u16le } from "./_bytes.js";

const tmp = mkdtempSync(join(tmpdir(), "nrt-st-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The NrtError that `f` throws (fails the test if it throws anything else or nothing). */
function nrtError(f: () => unknown): NrtError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(NrtError);
    return e as NrtError;
  }
  return expect.fail("expected an NrtError");
}

describe("F16 and BF16 are converted to float32 exactly", () => {
  // bit pattern → value, computed by hand from sign · 2^(e − bias) · (1 + m / 2^mbits)
  const f16: [number, number][] = [
    [0x3c00, 1],
    [0xc000, -2],
    [0x3555, 0.333251953125], // 2^-2 · (1 + 341/1024)
    [0x7bff, 65504], // largest half
    [0x0400, 2 ** -14], // smallest normal
    [0x0001, 2 ** -24], // smallest subnormal
    [0x03ff, 1023 * 2 ** -24], // largest subnormal
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
    [0x8000, -0],
  ];
  const bf16: [number, number][] = [
    [0x3f80, 1],
    [0xc040, -3],
    [0x4049, 3.140625], // 2 · (1 + 73/128)
    [0x7f7f, (2 - 2 ** -7) * 2 ** 127], // largest bfloat16
    [0x0080, 2 ** -126], // smallest normal
    [0x0001, 2 ** -133], // smallest subnormal
    [0xff80, -Infinity],
    [0x8000, -0],
  ];
  for (const [dtype, table] of [
    ["F16", f16],
    ["BF16", bf16],
  ] as const) {
    it(dtype, () => {
      const bits = [...table.map(([b]) => b), dtype === "F16" ? 0x7e00 : 0x7fc0]; // + a NaN
      const n = bits.length;
      const bytes = rawSafetensors({ x: { dtype, shape: [n], data_offsets: [0, 2 * n] } }, u16le(bits));
      const x = parseSafetensors(bytes, "t.safetensors").tensors.get("x")!;
      expect(x.dtype).toBe(dtype);
      expect(x.shape).toEqual([n]);
      for (const [i, [b, v]] of table.entries()) expect(Object.is(x.data[i], v), `0x${b.toString(16)}`).toBe(true);
      expect(x.data[n - 1]).toBeNaN();
    });
  }

  it("reads a mixed-dtype file with unaligned data (header length not a multiple of 4)", () => {
    const data = concat([
      u16le([0x3c00, 0x4000]),
      new Uint8Array(new Float32Array([0.1, -7.5]).buffer),
      u16le([0x4040]),
    ]);
    const header = {
      a: { dtype: "F16", shape: [2], data_offsets: [0, 4] },
      b: { dtype: "F32", shape: [1, 2], data_offsets: [4, 12] },
      c: { dtype: "BF16", shape: [], data_offsets: [12, 14] },
      __metadata__: { format: "pt" },
    };
    const bytes = rawSafetensors(`${JSON.stringify(header)} `, data);
    expect((bytes.length - data.length) % 4).not.toBe(0);
    const { tensors, metadata } = parseSafetensors(bytes, "t");
    expect([...tensors.keys()]).toEqual(["a", "b", "c"]);
    expect([...tensors.get("a")!.data]).toEqual([1, 2]);
    expect([...tensors.get("b")!.data]).toEqual([Math.fround(0.1), -7.5]);
    expect(tensors.get("c")!.shape).toEqual([]);
    expect([...tensors.get("c")!.data]).toEqual([3]);
    expect(metadata).toEqual({ format: "pt" });
  });
});

describe("writeSafetensors", () => {
  const tensors = [
    { name: "w", shape: [2, 3], data: new Float32Array([1, -2, 3.5, Number.MIN_VALUE, -0, 1e30]) },
    { name: "b", shape: [3], data: new Float32Array([0.25, 0.5, 0.75]) },
    { name: "empty", shape: [0, 4], data: new Float32Array(0) },
  ];

  it("round-trips bit for bit, with an 8-byte aligned header, sorted names and metadata", () => {
    const path = join(tmp, "rt.safetensors");
    writeSafetensors(path, tensors, { format: "pt", note: "hi" });
    const bytes = readFileSync(path);
    const n = Number(bytes.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8"));
    expect(Object.keys(header)).toEqual(["__metadata__", "b", "empty", "w"]);
    expect(header.w).toEqual({ dtype: "F32", shape: [2, 3], data_offsets: [12, 36] });
    const back = readSafetensors(path);
    expect(back.metadata).toEqual({ format: "pt", note: "hi" });
    for (const t of tensors) {
      const r = back.tensors.get(t.name)!;
      expect(r.dtype).toBe("F32");
      expect(r.shape).toEqual(t.shape);
      expect(new Uint32Array(r.data.buffer, r.data.byteOffset, r.data.length)).toEqual(new Uint32Array(t.data.buffer));
    }
    expect(parseSafetensors(bytes, path).tensors.get("w")!.data).toEqual(back.tensors.get("w")!.data);
    expect(readdirSync(tmp).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });

  it("refuses a shape that does not match the data, and duplicate names", () => {
    const e = nrtError(() => encodeSafetensors([{ name: "w", shape: [2, 2], data: new Float32Array(3) }], {}, "f"));
    expect(e.message).toMatch(/^f: w: .*needs 4 values, got 3/);
    const two = [tensors[1], tensors[1]];
    expect(nrtError(() => encodeSafetensors(two, {}, "f")).message).toMatch(/^f: b: duplicate/);
  });

  it("copes with a tensor named __proto__", () => {
    const chunks = encodeSafetensors([{ name: "__proto__", shape: [1], data: new Float32Array([5]) }]);
    expect([...parseSafetensors(concat(chunks), "f").tensors.get("__proto__")!.data]).toEqual([5]);
  });
});

describe("malformed files are refused with an NrtError naming the file and tensor", () => {
  const good = () => rawSafetensors({ w: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8));
  const cases: [string, () => Uint8Array, RegExp][] = [
    ["empty file", () => new Uint8Array(0), /^f: file is 0 bytes, too short/],
    ["truncated file", () => good().subarray(0, 40), /^f: header length \d+ exceeds the 32 bytes after it \(truncated/],
    ["truncated data", () => good().subarray(0, good().length - 1), /^f: w: data_offsets \[0, 8\] lie outside/],
    [
      "header length past the end",
      () => rawSafetensors({}, undefined, { headerLength: 3n }),
      /^f: header length 3 exceeds the 2 bytes/,
    ],
    [
      "huge header length",
      () => rawSafetensors({}, undefined, { headerLength: 2n ** 63n }),
      /^f: header length \d+ exceeds/,
    ],
    ["bad JSON", () => rawSafetensors('{"w": {"dtype": '), /^f: header is not valid UTF-8 JSON/],
    ["bad UTF-8", () => rawSafetensors("{ }").fill(0xff, 9, 10), /^f: header is not valid UTF-8 JSON \(.*utf-8/],
    ["header not an object", () => rawSafetensors([1, 2]), /^f: header is not a JSON object/],
    ["entry not an object", () => rawSafetensors({ w: 3 }), /^f: w: header entry is not an object/],
    [
      "unknown dtype",
      () => rawSafetensors({ w: { dtype: "I64", shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)),
      /^f: w: unsupported dtype "I64"/,
    ],
    [
      "bad shape",
      () => rawSafetensors({ w: { dtype: "F32", shape: [-1], data_offsets: [0, 0] } }),
      /^f: w: shape \[-1\] is not a list/,
    ],
    [
      "offsets out of range",
      () => rawSafetensors({ w: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, new Uint8Array(8)),
      /^f: w: data_offsets \[0, 16\] lie outside the data section \(8 bytes\)/,
    ],
    [
      "reversed offsets",
      () => rawSafetensors({ w: { dtype: "F32", shape: [0], data_offsets: [8, 0] } }, new Uint8Array(8)),
      /^f: w: data_offsets \[8,0\] is not \[begin, end\]/,
    ],
    [
      "wrong byte length",
      () => rawSafetensors({ w: { dtype: "F16", shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8)),
      /^f: w: data_offsets span 8 bytes but F16 \[2\] needs 4/,
    ],
    [
      "overlapping tensors",
      () =>
        rawSafetensors(
          {
            a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
            b: { dtype: "F32", shape: [1], data_offsets: [4, 8] },
          },
          new Uint8Array(8),
        ),
      /^f: b: data_offsets overlap those of a/,
    ],
    [
      "a gap in the data",
      () => rawSafetensors({ w: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)),
      /^f: bytes \[0, 4\) of the data section belong to no tensor/,
    ],
    [
      "trailing bytes",
      () => rawSafetensors({ w: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, new Uint8Array(8)),
      /^f: the data section has 8 bytes but the tensors cover 4/,
    ],
    [
      "bad metadata",
      () => rawSafetensors({ __metadata__: { a: 1 } }),
      /^f: __metadata__: must be an object of strings/,
    ],
  ];
  for (const [what, bytes, message] of cases) {
    it(what, () => expect(nrtError(() => parseSafetensors(bytes(), "f")).message).toMatch(message));
  }

  it("readSafetensors reports the same errors, and a missing file, under the path", () => {
    const path = join(tmp, "bad.safetensors");
    writeFileSync(path, good().subarray(0, 30));
    expect(nrtError(() => readSafetensors(path)).message).toContain(path);
    expect(nrtError(() => readSafetensors(join(tmp, "nope.safetensors"))).message).toMatch(
      /nope\.safetensors: cannot open \(ENOENT\)/,
    );
  });
});
