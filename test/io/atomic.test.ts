import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NrtError } from "../../src/errors.js";
import { writeDirAtomic, writeFileAtomic } from "../../src/io/atomic.js";

const tmp = mkdtempSync(join(tmpdir(), "nrt-atomic-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Every entry under `dir`, as sorted relative paths. */
function tree(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).sort();
}

describe("writeFileAtomic", () => {
  it("creates and replaces a file, leaving no temporary file", () => {
    const d = join(tmp, "f");
    mkdirSync(d);
    const path = join(d, "a.json");
    writeFileAtomic(path, "one");
    writeFileAtomic(path, [new Uint8Array([116, 119]), new Uint8Array([111])]);
    expect(readFileSync(path, "utf8")).toBe("two");
    expect(tree(d)).toEqual(["a.json"]);
  });

  it("fails cleanly when the directory does not exist", () => {
    expect(() => writeFileAtomic(join(tmp, "no", "such", "x"), "x")).toThrow();
  });
});

describe("writeDirAtomic", () => {
  it("writes nested files and replaces an existing directory wholesale", () => {
    const dir = join(tmp, "runs", "ckpt");
    writeDirAtomic(dir, { "a.txt": "old", "stale.txt": "gone soon" });
    writeDirAtomic(dir, { "a.txt": "new", "sub/deeper/b.bin": new Uint8Array([1, 2, 3]) });
    expect(tree(dir)).toEqual(["a.txt", "sub", "sub/deeper", "sub/deeper/b.bin"]);
    expect(readFileSync(join(dir, "a.txt"), "utf8")).toBe("new");
    expect([...readFileSync(join(dir, "sub/deeper/b.bin"))]).toEqual([1, 2, 3]);
    expect(readdirSync(join(tmp, "runs"))).toEqual(["ckpt"]); // no .tmp- or .old- copies left
  });

  it("a failure part-way leaves nothing new behind and the old directory untouched", () => {
    const parent = join(tmp, "fail");
    const dir = join(parent, "m");
    // "x" is written as a file, then "x/y" needs "x" to be a directory: the second write fails
    expect(() => writeDirAtomic(dir, { x: "1", "x/y": "2" })).toThrow();
    expect(existsSync(parent) ? readdirSync(parent) : []).toEqual([]);

    writeDirAtomic(dir, { keep: "me" });
    expect(() => writeDirAtomic(dir, { x: "1", "x/y": "2" })).toThrow();
    expect(readdirSync(parent)).toEqual(["m"]);
    expect(tree(dir)).toEqual(["keep"]);
  });

  it("refuses names that escape the directory, and a target that is a file", () => {
    for (const bad of ["../evil", "/abs", "a//b", "./a", ""]) {
      expect(() => writeDirAtomic(join(tmp, "esc"), { [bad]: "x" }), bad).toThrow(NrtError);
    }
    expect(existsSync(join(tmp, "esc"))).toBe(false);
    writeFileSync(join(tmp, "plain"), "x");
    expect(() => writeDirAtomic(join(tmp, "plain"), { a: "b" })).toThrow(/exists and is not a directory/);
  });
});
