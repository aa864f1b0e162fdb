import { describe, expect, it } from "vitest";
import { NrtError } from "../../src/errors.js";
import { formatQuestion, parseQuestion, solve } from "../../src/world/question.js";

describe("solve", () => {
  it("gives the SPEC §7 chain example", () => {
    const s = solve("a7,b+4,c*6,d+2;d");
    expect(s.answer).toBe("d=8");
    expect(s.trace).toBe("b=7+4=1 c=1*6=6 d=6+2=8");
    expect(s.world).toBe("chain");
    expect(s.k).toBe(4);
    expect(s.values).toEqual([7, 1, 6, 8]);
  });

  it("gives the SPEC §7 chain2 example, with the same trace", () => {
    const s = solve("a7,b+4,c*6,d+2;b,d");
    expect(s.answer).toBe("b=1,d=8");
    expect(s.trace).toBe("b=7+4=1 c=1*6=6 d=6+2=8");
    expect(s.world).toBe("chain2");
  });

  it("handles the extremes: k = 2 and k = 10", () => {
    expect(solve("a0,b*9;b")).toMatchObject({ answer: "b=0", trace: "b=0*9=0", k: 2 });
    const q = "a9,b+9,c*9,d+1,e*2,f+3,g*4,h+5,i*6,j+7;c,j";
    // 9 → 8 → 2 → 3 → 6 → 9 → 6 → 1 → 6 → 3
    expect(solve(q).answer).toBe("c=2,j=3");
    expect(formatQuestion(parseQuestion(q))).toBe(q);
  });

  it.each([
    ["", "one ';'"],
    ["a7,b+4", "one ';'"],
    ["a7,b+4;b;b", "one ';'"],
    ["a7;a", "at least one step"],
    ["b7,b+4;b", "first item"],
    ["a77,b+4;b", "first item"],
    ["a7,c+4;c", "must define 'b'"],
    ["a7,b-4;b", "step 1"],
    ["a7,b+10;b", "step 1"],
    ["a7,b+0;b", "1-9"],
    ["a7,b*1;b", "2-9"],
    ["a7,b+4,c*6;b", "last queried"],
    ["a7,b+4,c*6;a,c", "early"],
    ["a7,b+4,c*6;c,c", "early"],
    ["a7,b+4,c*6;bc,c", "early"],
    ["a7,b+4,c*6;b,b,c", "one (chain) or two"],
    ["a7, b+4;b", "step 1"],
    ["a1,b+1,c+1,d+1,e+1,f+1,g+1,h+1,i+1,j+1,k+1;k", "at most 10"],
  ])("rejects %j (%s)", (q, reason) => {
    expect(() => solve(q)).toThrow(NrtError);
    expect(() => solve(q)).toThrow(reason);
  });
});
