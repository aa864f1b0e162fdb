import { describe, expect, it } from "vitest";
import { defaultObjective, methods, resolveMethod, resolveObjective } from "../../src/nrt/methods.js";

describe("resolveObjective", () => {
  it("fills the SPEC §4 defaults", () => {
    expect(resolveObjective()).toEqual({
      aggregation: "ws_nlog",
      baseline: "none",
      advantage: "group_std",
      tokenWeight: "fixed",
      formatCoef: 0.3,
    });
    expect(resolveObjective({ aggregation: undefined })).toEqual(defaultObjective);
  });

  it("keeps what is given", () => {
    expect(resolveObjective({ aggregation: "gm", baseline: "clip", formatCoef: 0 })).toEqual({
      ...defaultObjective,
      aggregation: "gm",
      baseline: "clip",
      formatCoef: 0,
    });
  });

  it("names the key and lists the allowed values", () => {
    expect(() => resolveObjective({ aggregation: "geo" })).toThrow(
      'objective.aggregation: must be one of logp, prob, gm, am, ws_inv, ws_nlog; got "geo"',
    );
    expect(() => resolveObjective({ baseline: "empty" })).toThrow(/objective.baseline: must be one of none, clip/);
    expect(() => resolveObjective({ advantage: 1 })).toThrow(/group_std, rloo, loo_mean; got 1/);
    expect(() => resolveObjective({ tokenWeight: "toString" })).toThrow(/fixed, derived, reward, none/);
    expect(() => resolveObjective({ formatCoef: -1 })).toThrow(/objective.formatCoef: must be a finite number ≥ 0/);
    expect(() => resolveObjective({ formatCoef: "0.3" })).toThrow(/objective.formatCoef/);
  });

  it("refuses unknown keys (e.g. snake_case)", () => {
    const input = JSON.parse('{"token_weight": "fixed"}') as Record<string, unknown>;
    expect(() => resolveObjective(input)).toThrow(/objective.token_weight: unknown key/);
  });
});

describe("methods (SPEC §5)", () => {
  it("are the table's presets", () => {
    expect(methods["nrt-ws"]).toEqual({
      sft: false,
      aggregation: "ws_nlog",
      baseline: "none",
      advantage: "group_std",
      tokenWeight: "fixed",
    });
    expect(methods["nrt-gm"]).toMatchObject({ aggregation: "gm", baseline: "none", advantage: "group_std" });
    expect(methods.rlpr).toMatchObject({ aggregation: "am", baseline: "clip", tokenWeight: "none" });
    expect(methods.verifree).toMatchObject({ aggregation: "prob", advantage: "rloo", tokenWeight: "reward" });
    expect(methods.jlb).toMatchObject({ aggregation: "logp", advantage: "loo_mean", tokenWeight: "fixed" });
    expect(methods.sft).toEqual({ sft: true });
  });

  it("every non-SFT preset resolves to a valid objective", () => {
    for (const preset of Object.values(methods)) {
      if (preset.sft) continue;
      const { sft: _, ...choice } = preset;
      expect(resolveObjective(choice)).toEqual({ ...choice, formatCoef: 0.3 });
    }
  });

  it("resolveMethod checks names", () => {
    expect(resolveMethod("jlb")).toBe("jlb");
    expect(() => resolveMethod("grpo")).toThrow(
      'method: must be one of nrt-ws, nrt-gm, rlpr, verifree, jlb, sft; got "grpo"',
    );
  });
});
