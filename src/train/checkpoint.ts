import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { EngineResume } from "../engine/open.js";
import { NrtError } from "../errors.js";
import { markLatestCheckpoint, saveModelDir } from "../io/model-dir.js";
import { encodeSafetensors, readSafetensors } from "../io/safetensors.js";
import type { Model } from "../model/model.js";
import type { AdamWState } from "../model/native.js";

/** AdamW's state in a checkpoint: the moments where they live in this process (a remote engine keeps its own). */
export type OptimizerState = Pick<AdamWState, "step"> & Partial<AdamWState>;

const STATE_FILE = "trainer_state.json";
const OPTIM_FILE = "optimizer.safetensors";
const STATE_FORMAT = "nrt-trainer-state";
const STATE_VERSION = 1;

/** What a checkpoint keeps beside the model so that a resumed run continues exactly. */
export interface TrainerState {
  /** last completed step */
  step: number;
  /** batches skipped for non-finite values (--on-nan skip) */
  nanSkipped: number;
  /** anything else a trainer needs (e.g. an RNG state) */
  extra: Record<string, unknown>;
}

export const checkpointName = (step: number): string => `step-${String(step).padStart(6, "0")}`;

/**
 * Writes RUN/checkpoints/step-NNNNNN/ as one atomic directory (model directory + tokenizer + AdamW moments +
 * trainer state), then points checkpoints/latest at it, then prunes all but the newest `keep`. A crash at any
 * moment leaves the previous checkpoint and pointer intact.
 */
export function saveCheckpoint(
  runDir: string,
  model: Model,
  /** tokenizer.json and the model's other tokenizer files (tokenizer_config.json, chat template), by name */
  tokenizerFiles: Readonly<Record<string, string>>,
  opt: OptimizerState,
  state: TrainerState,
  keep: number,
): string {
  const name = checkpointName(state.step);
  const optim =
    opt.m && opt.v
      ? Buffer.concat(
          encodeSafetensors(
            [
              { name: "adamw.m", shape: [opt.m.length], data: opt.m },
              { name: "adamw.v", shape: [opt.v.length], data: opt.v },
            ],
            { step: String(opt.step) },
          ),
        )
      : null;
  const stateJson = JSON.stringify(
    { format: STATE_FORMAT, version: STATE_VERSION, adamStep: opt.step, ...state },
    null,
    2,
  );
  saveModelDir(join(runDir, "checkpoints", name), model, {
    ...tokenizerFiles,
    ...(optim && { [OPTIM_FILE]: optim }),
    [STATE_FILE]: `${stateJson}\n`,
  });
  markLatestCheckpoint(runDir, name);
  // `latest` now names `name`, so nothing else is referenced: keep `name` and the newest keep − 1 before it; drop
  // newer ones (written by a run killed before it moved `latest`, then resumed from an older one) and the
  // .tmp-/.old- leftovers of writes a kill interrupted
  const entries = readdirSync(join(runDir, "checkpoints"));
  const older = entries.filter((d) => /^step-\d{6}$/.test(d) && d < name).sort();
  const drop = [
    ...older.slice(0, Math.max(0, older.length - (keep - 1))),
    ...entries.filter((d) => (/^step-\d{6}$/.test(d) && d > name) || /^(step-\d{6}|\.latest)\.(tmp|old)-/.test(d)),
  ];
  for (const d of drop) rmSync(join(runDir, "checkpoints", d), { recursive: true, force: true });
  return name;
}

/** The latest checkpoint of a run: its directory (a model directory) and trainer state. */
export function latestCheckpoint(runDir: string): { dir: string; state: TrainerState & { adamStep: number } } | null {
  if (!existsSync(join(runDir, "checkpoints", "latest"))) return null;
  const name = readFileSync(join(runDir, "checkpoints", "latest"), "utf8").trim();
  const cdir = join(runDir, "checkpoints", name);
  const sp = join(cdir, STATE_FILE);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(sp, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new NrtError(`cannot read trainer state (${(e as Error).message})`, sp);
  }
  if (json.format !== STATE_FORMAT || json.version !== STATE_VERSION)
    throw new NrtError(`not an ${STATE_FORMAT} v${STATE_VERSION} file`, sp);
  return { dir: cdir, state: json as unknown as TrainerState & { adamStep: number } };
}

/** Restores AdamW's moments and step from a checkpoint directory. */
export function loadOptimizer(dir: string, opt: AdamWState, adamStep: number): void {
  const path = join(dir, OPTIM_FILE);
  const { tensors } = readSafetensors(path);
  const m = tensors.get("adamw.m");
  const v = tensors.get("adamw.v");
  if (!m || m.data.length !== opt.m.length) throw new NrtError("adamw.m is missing or has the wrong size", path);
  if (!v || v.data.length !== opt.v.length) throw new NrtError("adamw.v is missing or has the wrong size", path);
  opt.m.set(m.data);
  opt.v.set(v.data);
  opt.step = adamStep;
}

/** What the engine of a run resumed from `ckpt` is handed: the updates so far, its remote state, the moments. */
export function engineResume(
  ckpt: { dir: string; state: TrainerState & { adamStep: number } },
  model: Model,
): EngineResume {
  return {
    dir: ckpt.dir,
    updates: ckpt.state.adamStep,
    remote: ckpt.state.extra.engine as Record<string, unknown> | undefined,
    optimizer: () => {
      const opt = { m: model.zeros(), v: model.zeros(), step: 0 };
      loadOptimizer(ckpt.dir, opt, ckpt.state.adamStep);
      return opt;
    },
  };
}
