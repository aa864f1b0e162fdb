// The GGUF writer's state machine (header → key/values → tensor infos → data, nothing out of order), its byte
// layout as @huggingface/gguf reads it, and the float32 → float16 rounding.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GGMLQuantizationType, gguf } from "@huggingface/gguf";
import { afterAll, describe, expect, it } from "vitest";
import { GgufWriter, gv } from "../../src/export/gguf.js";
import { parseGguf } from "../../src/export/gguf-read.js";
import { f16ToF32 } from "../../src/io/_dtypes.js";
import { f32ToF16Bits } from "../../src/io/f16.js";

const tmp = mkdtempSync(join(tmpdir(), "nrt-gguf-writer-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = () => new GgufWriter(join(tmp, `w${n++}.gguf`));
const f32 = (...xs: number[]) => new Uint8Array(Float32Array.from(xs).buffer);

describe("GgufWriter", () => {
  it("writes a file that @huggingface/gguf and our reader parse the same way", async () => {
    const path = join(tmp, "ok.gguf");
    const w = new GgufWriter(path);
    w.writeHeader(2, 5);
    w.writeKv("general.architecture", gv.str("llama"));
    w.writeKv("a.u32", gv.u32(7));
    w.writeKv("a.f32", gv.f32(0.5));
    w.writeKv("a.bool", gv.bool(true));
    w.writeKv("a.strs", gv.arr("str", ["x", "ÿ", ""]));
    w.writeTensorInfo("t.a", [2, 3], "F32"); // 24 bytes, padded to 32
    w.writeTensorInfo("t.b", [5], "F32");
    w.writeTensorData("t.a", f32(1, 2, 3, 4, 5, 6));
    w.writeTensorData("t.b", f32(-1, -2, -3, -4, -5));
    const size = w.close();
    const bytes = readFileSync(path);
    expect(bytes.length).toBe(size);
    expect(bytes.subarray(0, 4).toString("latin1")).toBe("GGUF");
    const { metadata, tensorInfos } = await gguf(path, { allowLocalFile: true });
    expect(metadata).toMatchObject({ version: 3, tensor_count: 2n, kv_count: 5n, "a.u32": 7, "a.f32": 0.5 });
    expect((metadata as unknown as Record<string, unknown>)["a.strs"]).toEqual(["x", "ÿ", ""]);
    expect(tensorInfos).toEqual([
      { name: "t.a", n_dims: 2, shape: [3n, 2n], dtype: GGMLQuantizationType.F32, offset: 0n },
      { name: "t.b", n_dims: 1, shape: [5n], dtype: GGMLQuantizationType.F32, offset: 32n },
    ]);
    const file = parseGguf(bytes, path);
    expect(file.tensors.get("t.a")).toMatchObject({ shape: [2, 3] });
    const start = file.tensors.get("t.a")!.offset;
    expect(start % 32).toBe(0);
    expect(new Float32Array(Uint8Array.from(bytes.subarray(start + 32, start + 52)).buffer)).toEqual(
      Float32Array.of(-1, -2, -3, -4, -5),
    );
    expect(size % 32).toBe(0);
  });

  it("refuses out-of-order and inconsistent writes", () => {
    type Step = (w: GgufWriter) => unknown;
    const hdr =
      (tensors: number, kvs: number): Step =>
      (w) =>
        w.writeHeader(tensors, kvs);
    const kv =
      (key: string, v = gv.u32(1)): Step =>
      (w) =>
        w.writeKv(key, v);
    const info =
      (name: string, shape = [1]): Step =>
      (w) =>
        w.writeTensorInfo(name, shape, "F32");
    const data =
      (name: string): Step =>
      (w) =>
        w.writeTensorData(name, f32(1));
    const close: Step = (w) => w.close();
    const fails: [string, Step[], RegExp][] = [
      ["kv before header", [kv("k")], /writeKv is out of order \(state: empty\)/],
      ["data before header", [data("t")], /out of order/],
      ["two headers", [hdr(0, 0), hdr(0, 0)], /writeHeader is out of order/],
      ["too many kvs", [hdr(0, 1), kv("a"), kv("b")], /announced 1/],
      ["duplicate key", [hdr(0, 2), kv("a"), kv("a")], /duplicate/],
      ["tensor info before all kvs", [hdr(1, 2), kv("a"), info("t")], /1 of the 2 announced key\/values/],
      [
        "kv after a tensor info",
        [hdr(1, 1), kv("a"), info("t"), kv("b")],
        /writeKv is out of order \(state: tensor-info\)/,
      ],
      ["data before all tensor infos", [hdr(2, 0), info("t"), data("t")], /tensor infos \(1\/2\)/],
      [
        "tensor info after data",
        [hdr(1, 0), info("t"), data("t"), info("u")],
        /writeTensorInfo is out of order \(state: data\)/,
      ],
      ["data out of info order", [hdr(2, 0), info("t"), info("u"), data("u")], /expected the data of t, got u/],
      ["wrong data size", [hdr(1, 0), info("t", [2]), data("t")], /needs 8 bytes/],
      ["close with tensors missing", [hdr(1, 0), info("t"), close], /0\/1 tensors/],
      ["u32 out of range", [hdr(0, 1), kv("a", gv.u32(-1))], /-1 is not a u32/],
      ["alignment key disagrees", [hdr(0, 1), kv("general.alignment", gv.u32(64))], /must be u32 32/],
      ["too many dims", [hdr(1, 0), info("t", [1, 1, 1, 1, 1])], /bad shape/],
    ];
    for (const [what, steps, re] of fails) {
      const w = fresh();
      expect(() => {
        for (const step of steps) step(w);
      }, what).toThrow(re);
      w.abort();
    }
    // aborted writers leave nothing behind, not even their temporary files
    expect(readdirSync(tmp).filter((f) => f.startsWith(".") || /^w\d+\.gguf$/.test(f))).toEqual([]);
    expect(existsSync(join(tmp, "w0.gguf"))).toBe(false);
  });
});

describe("f32ToF16Bits", () => {
  it("is exact on every finite half and keeps infinities", () => {
    const wrong: string[] = [];
    for (let h = 0; h < 0x10000; h++) {
      const x = f16ToF32(h);
      const ok = Number.isNaN(x) ? Number.isNaN(f16ToF32(f32ToF16Bits(x))) : f32ToF16Bits(x) === h;
      if (!ok) wrong.push(`0x${h.toString(16)}`);
    }
    expect(wrong).toEqual([]);
  });

  it("rounds to nearest, ties to even, overflowing to infinity and underflowing through subnormals", () => {
    const cases: [number, number][] = [
      [1 + 2 ** -11, 1], // tie between 1 and 1 + 2^-10: even is 1
      [1 + 3 * 2 ** -11, 1 + 2 ** -9], // tie between 1 + 2^-10 and 1 + 2^-9: even is the latter
      [1 + 2 ** -11 + 2 ** -20, 1 + 2 ** -10],
      [65504, 65504],
      [65520, Infinity], // halfway to 2^16 rounds up to the next (overflowing) value
      [65519, 65504],
      [2 ** -25, 0], // tie between 0 and the smallest subnormal 2^-24: even is 0
      [1.5 * 2 ** -24, 2 * 2 ** -24], // tie between 1 and 2 subnormal units: even is 2
      [2 ** -26, 0],
      [-(2 ** -14) * (1 - 2 ** -11), -(2 ** -14)], // largest subnormal region rounds up into the normals
    ];
    for (const [x, want] of cases) expect(f16ToF32(f32ToF16Bits(x)), String(x)).toBe(want);
  });
});
