import { NrtError } from "../errors.js";
import type { Model } from "../model/model.js";
import { defaultObjective, type NrtObjective, resolveObjective } from "../nrt/methods.js";
import { sequenceOffsets } from "../nrt/weights.js";
import { snake } from "../util/case.js";
import { emptyLayout, type QuestionGroup, scoreNrtBatch, sftBatch } from "./nrt-batch.js";

/** An `nrt grad` batch (SPEC §6). */
export interface GradBatch {
  config: Record<string, unknown>;
  answer_start_id: number;
  groups: QuestionGroup[];
}

export interface GradStats {
  loss: number;
  groups: { R: number[]; R_prime: number[]; A: number[]; c: number[][]; b: number[] }[];
}

function intArray(v: unknown, where: string, V: number): number[] {
  if (!Array.isArray(v)) throw new NrtError("must be an array of token ids", where);
  v.forEach((t, i) => {
    if (!Number.isInteger(t) || t < 0 || t >= V)
      throw new NrtError(`token id ${JSON.stringify(t)} is not in [0, ${V})`, `${where}[${i}]`);
  });
  return v as number[];
}

/** Checks an `nrt grad` batch against SPEC §6, naming the first bad field. */
export function parseGradBatch(json: unknown, vocabSize: number, where = "batch"): GradBatch {
  if (typeof json !== "object" || json === null) throw new NrtError("must be a JSON object", where);
  const o = json as Record<string, unknown>;
  const config = (o.config ?? {}) as Record<string, unknown>;
  if (typeof config !== "object" || Array.isArray(config)) throw new NrtError("must be an object", `${where}.config`);
  const as = o.answer_start_id;
  if (!Number.isInteger(as) || (as as number) < 0 || (as as number) >= vocabSize)
    throw new NrtError(`must be a token id in [0, ${vocabSize})`, `${where}.answer_start_id`);
  if (!Array.isArray(o.groups) || o.groups.length === 0)
    throw new NrtError("must be a non-empty array", `${where}.groups`);
  const groups = o.groups.map((g: unknown, i: number): QuestionGroup => {
    const w = `${where}.groups[${i}]`;
    if (typeof g !== "object" || g === null) throw new NrtError("must be an object", w);
    const q = g as Record<string, unknown>;
    const prompt = intArray(q.prompt, `${w}.prompt`, vocabSize);
    if (prompt.length === 0) throw new NrtError("must not be empty", `${w}.prompt`);
    const answer = intArray(q.answer, `${w}.answer`, vocabSize);
    if (answer.length === 0) throw new NrtError("must not be empty", `${w}.answer`);
    const traces = q.traces ?? [];
    if (!Array.isArray(traces)) throw new NrtError("must be an array", `${w}.traces`);
    return {
      prompt,
      answer,
      traces: traces.map((t: unknown, k: number) => {
        const tw = `${w}.traces[${k}]`;
        if (typeof t !== "object" || t === null) throw new NrtError("must be an object", tw);
        const tr = t as Record<string, unknown>;
        if (typeof tr.emitted !== "boolean") throw new NrtError("must be true or false", `${tw}.emitted`);
        return { tokens: intArray(tr.tokens, `${tw}.tokens`, vocabSize), emitted: tr.emitted };
      }),
    };
  });
  return { config, answer_start_id: as as number, groups };
}

/**
 * ∂L/∂θ of SPEC §4 for one batch, accumulated into `grads` (zeroed first), with the stats of SPEC §6.
 * `"method": "sft"` in the config gives the SFT loss of SPEC §5 instead.
 */
export function gradBatch(model: Model, batch: GradBatch, grads: Float32Array): GradStats {
  grads.fill(0);
  const { method, ...rest } = batch.config;
  if (method !== undefined && method !== "sft")
    throw new NrtError(`only "sft" may be given here (other methods are their config keys)`, "config.method");
  if (method === "sft") {
    const b = sftBatch(model, batch.groups, batch.answer_start_id);
    const loss = model.runner.backward(b.weights, grads);
    // b: the answer's probabilities right after ⟨answer_start⟩, as for the empty trace of an NRT group
    let at = 0;
    const groups = batch.groups.map((g) => {
      const offsets = sequenceOffsets(emptyLayout(g));
      const a = at + offsets.answer;
      at += offsets.end;
      return {
        R: [],
        R_prime: [],
        A: [],
        c: [],
        b: Array.from(b.forward.logprobs.subarray(a, a + g.answer.length), Math.exp),
      };
    });
    return { loss, groups };
  }
  // batch files use the snake_case keys of SPEC §6; errors name them as written
  const keys: Record<string, string> = Object.fromEntries(Object.keys(defaultObjective).map((k) => [snake(k), k]));
  const camel: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rest)) {
    if (!Object.hasOwn(keys, k))
      throw new NrtError(`unknown key (known: method, ${Object.keys(keys).join(", ")})`, `config.${k}`);
    camel[keys[k]] = v;
  }
  let objective: NrtObjective;
  try {
    objective = resolveObjective(camel);
  } catch (e) {
    const where = (e as NrtError).where?.replace(/^objective\.(\w+)/, (_, k: string) => `config.${snake(k)}`);
    throw new NrtError((e as Error).message.replace(/^[^:]*: /, ""), where);
  }
  for (const [i, g] of batch.groups.entries())
    if (g.traces.length === 0) throw new NrtError("needs at least one trace", `groups[${i}].traces`);
  const s = scoreNrtBatch(model, batch.groups, objective, batch.answer_start_id);
  const loss = model.runner.backward(s.weights, grads);
  return {
    loss,
    groups: s.scores.map((sc, g) => ({
      R: sc.R,
      R_prime: sc.Rprime,
      A: sc.A,
      c: s.logc[g].map((row) => row.map(Math.exp)),
      b: s.logb[g].map(Math.exp),
    })),
  };
}
