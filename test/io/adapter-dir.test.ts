// PEFT adapter directories read back and refused when malformed: one error naming the file and the key or tensor.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  adapterConfig,
  adapterDirFiles,
  readAdapter,
  readAdapterConfig,
  resolveBase,
} from "../../src/io/adapter-dir.js";
import { saveModelDir } from "../../src/io/model-dir.js";
import { encodeSafetensors } from "../../src/io/safetensors.js";
import { LoraAdapter } from "../../src/model/lora.js";
import { refusal } from "../helpers/refusal.js";
import { tinyModel } from "../helpers/tiny-run.js";

const model = tinyModel();
const settings = { rank: 2, alpha: 4, targets: ["q_proj", "v_proj"] as const };

function adapterDir(config: Record<string, unknown> = {}, tensors?: (a: LoraAdapter) => Uint8Array): string {
  const dir = mkdtempSync(join(tmpdir(), "nrt-adapter-"));
  saveModelDir(join(dir, "base"), model);
  const a = LoraAdapter.init(model.config, { ...settings, targets: [...settings.targets] }, 1);
  a.base = join(dir, "base");
  const files = adapterDirFiles(dir, a);
  writeFileSync(join(dir, ADAPTER_CONFIG_FILE), JSON.stringify({ ...adapterConfig(a), ...config }));
  writeFileSync(join(dir, ADAPTER_WEIGHTS_FILE), tensors ? tensors(a) : (files[ADAPTER_WEIGHTS_FILE] as Uint8Array));
  return dir;
}

describe("adapter directories", () => {
  it("round trip: the settings, the base and every tensor come back", () => {
    const dir = adapterDir();
    const { settings: s, base } = readAdapterConfig(dir);
    expect(s).toEqual({ rank: 2, alpha: 4, targets: ["q_proj", "v_proj"] });
    expect(resolveBase(base, dir)).toBe(join(dir, "base"));
    const a = readAdapter(dir, model.config, s);
    const want = LoraAdapter.init(model.config, s, 1);
    expect(Array.from(a.params)).toEqual(Array.from(want.params));
  });

  it.each([
    [{ peft_type: "IA3" }, /peft_type: nrt reads LoRA adapters/],
    [{ r: 0 }, /r: must be an integer >= 1/],
    [{ lora_alpha: -1 }, /lora_alpha: must be a number > 0/],
    [{ target_modules: "q_proj|v_proj" }, /target_modules: must be a list of projection names/],
    [{ target_modules: ["q_proj", "lm_head"] }, /target_modules: "lm_head" is not one of/],
    [{ bias: "all" }, /bias: nrt adapters have no bias terms/],
    [{ use_dora: true }, /use_dora: is not supported/],
    [{ use_rslora: true }, /use_rslora: is not supported/],
    [{ modules_to_save: ["lm_head"] }, /modules_to_save: is not supported/],
    [{ rank_pattern: { q_proj: 8 } }, /rank_pattern: per-module ranks are not supported/],
    [
      { base_model_name_or_path: "meta-llama/Llama-3.2-1B" },
      /base_model_name_or_path: .* is not a model directory here/,
    ],
  ])("adapter_config.json %j is refused naming the key", (over, msg) => {
    const dir = adapterDir(over);
    expect(
      refusal(() => {
        const c = readAdapterConfig(dir);
        resolveBase(c.base, dir);
      }),
    ).toMatch(msg);
  });

  it("not JSON, and tensors missing, misshapen, unexpected or not finite, are refused naming the tensor", () => {
    const dir = adapterDir();
    writeFileSync(join(dir, ADAPTER_CONFIG_FILE), "{ r: 2");
    expect(refusal(() => readAdapterConfig(dir))).toMatch(/adapter_config.json: not valid JSON/);
    const s = { ...settings, targets: [...settings.targets] };
    const enc = (edit: (t: { name: string; shape: number[]; data: Float32Array }[]) => void) => (a: LoraAdapter) => {
      const ts = a.table.map((p) => ({ name: p.name, shape: [...p.shape], data: a.view(p.name).slice() }));
      edit(ts);
      return Buffer.concat(encodeSafetensors(ts));
    };
    const q = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
    const cases: [ReturnType<typeof enc>, RegExp][] = [
      [enc((ts) => ts.splice(0, 1)), /q_proj\.lora_A\.weight: missing tensor/],
      [enc((ts) => (ts[0].shape = [ts[0].shape[1], ts[0].shape[0]])), /expected shape/],
      [
        enc((ts) => ts.push({ name: "base_model.model.lm_head.lora_A.weight", shape: [1], data: new Float32Array(1) })),
        /unexpected tensor/,
      ],
      [enc((ts) => (ts.find((t) => t.name === q)!.data[3] = Number.NaN)), /q_proj\.lora_A\.weight: element 3 is NaN/],
    ];
    for (const [tensors, msg] of cases) {
      const d = adapterDir({}, tensors);
      expect(refusal(() => readAdapter(d, model.config, s))).toMatch(msg);
    }
  });
});
