import { nrtSequence, Packed } from "../data/pack.js";
import type { Scored, SeqBatch } from "../engine/engine.js";
import type { Model } from "../model/model.js";
import { type GroupScores, scoreGroup } from "../nrt/group.js";
import type { NrtObjective } from "../nrt/methods.js";
import { type SequenceLayout, sequenceOffsets, sftSequenceWeights, traceSequenceWeights } from "../nrt/weights.js";

/** One question with its sampled traces: the unit of SPEC §3 (and of an `nrt grad` batch group). */
export interface QuestionGroup {
  prompt: readonly number[];
  /** y*, ending with ⟨eos⟩ */
  answer: readonly number[];
  traces: readonly { tokens: readonly number[]; emitted: boolean }[];
}

/** Where one trace's sequence sits in the packed batch (identical traces of a group share one sequence). */
export interface TraceSpan extends SequenceLayout {
  start: number;
  group: number;
  k: number;
  /** G·K_g, the SPEC §4 normaliser of its group */
  norm: number;
}

/** A scored batch: the packed sequences, their log-probabilities, SPEC §3's numbers and the loss weights of §4. */
export interface ScoredBatch {
  packed: Packed;
  /** the packed arrays as given to the engine (the same object, so that a step may reuse the score's forward) */
  seqs: SeqBatch;
  forward: Scored;
  spans: TraceSpan[];
  /** per group: (K, T) log c */
  logc: number[][][];
  /** per group: (T) log b */
  logb: number[][];
  scores: GroupScores[];
  /** per-token weights of the engine's primitive, so that Σ w·(−log π) = L */
  weights: Float32Array;
}

/** The layout of a group's empty-trace sequence prompt ⊕ ⟨answer_start⟩ ⊕ y* (the SFT sequence too). */
export function emptyLayout(q: Pick<QuestionGroup, "prompt" | "answer">): SequenceLayout {
  return { promptLen: q.prompt.length, traceLen: 0, answerLen: q.answer.length };
}

/** A batch packed for scoring: the sequences, where each trace's sits, and each group's empty-trace sequence. */
export interface NrtPack {
  packed: Packed;
  seqs: SeqBatch;
  spans: TraceSpan[];
  emptyStarts: number[];
}

/**
 * Packs each group's distinct sequences once: the empty trace prompt ⊕ ⟨answer_start⟩ ⊕ y* (which gives b), and
 * prompt ⊕ z ⊕ ⟨answer_start⟩ ⊕ y* for each distinct trace z. A trace equal to another of its group, or empty,
 * shares that sequence: its c is then exactly the other's (or b), so equal traces get exactly equal rewards —
 * float32 results depend slightly on a row's place in the batch, and SPEC §3's zero-std rule must see exact
 * equality — and since the loss is linear in the weights, their weights are summed on the shared sequence.
 */
export function packNrtBatch(groups: readonly QuestionGroup[], answerStartId: number): NrtPack {
  const packed = new Packed();
  const spans: TraceSpan[] = [];
  const emptyStarts: number[] = [];
  groups.forEach((q, g) => {
    const seen = new Map<string, number>();
    const empty = packed.add(nrtSequence(q.prompt, [], answerStartId, q.answer));
    emptyStarts.push(empty);
    seen.set("", empty);
    q.traces.forEach((tr, k) => {
      const key = tr.tokens.join(",");
      let start = seen.get(key);
      if (start === undefined) {
        start = packed.add(nrtSequence(q.prompt, tr.tokens, answerStartId, q.answer));
        seen.set(key, start);
      }
      const norm = groups.length * q.traces.length;
      spans.push({
        start,
        group: g,
        k,
        norm,
        promptLen: q.prompt.length,
        traceLen: tr.tokens.length,
        answerLen: q.answer.length,
      });
    });
  });
  return { packed, seqs: packed.arrays(), spans, emptyStarts };
}

/** From the ONE forward's log-probabilities of a pack: c, b, the group scores (SPEC §3) and the weights (SPEC §4). */
export function scorePacked(
  pack: NrtPack,
  groups: readonly QuestionGroup[],
  forward: Scored,
  objective: NrtObjective,
): ScoredBatch {
  const { packed, seqs, spans, emptyStarts } = pack;
  const lp = forward.logprobs;
  const answerLogprobs = (start: number, layout: SequenceLayout): number[] => {
    const a = start + sequenceOffsets(layout).answer;
    return Array.from(lp.subarray(a, a + layout.answerLen));
  };
  const logc: number[][][] = groups.map(() => []);
  for (const s of spans) logc[s.group].push(answerLogprobs(s.start, s));
  const logb = groups.map((q, g) => answerLogprobs(emptyStarts[g], emptyLayout(q)));
  const scores = groups.map((q, g) =>
    scoreGroup({ objective, logc: logc[g], logb: logb[g], emitted: q.traces.map((t) => t.emitted) }),
  );
  const weights = new Float32Array(packed.length);
  for (const s of spans) addAt(weights, s.start, traceSequenceWeights(s, scores[s.group], s.k, s.norm));
  return { packed, seqs, forward, spans, logc, logb, scores, weights };
}

/** `packNrtBatch` + ONE native forward (kept in the engine for a backward, as `nrt grad` does) + `scorePacked`. */
export function scoreNrtBatch(
  model: Model,
  groups: readonly QuestionGroup[],
  objective: NrtObjective,
  answerStartId: number,
): ScoredBatch {
  const pack = packNrtBatch(groups, answerStartId);
  return scorePacked(pack, groups, model.runner.forward(pack.seqs.tokens, pack.seqs.lens), objective);
}

function addAt(w: Float32Array, at: number, add: Float32Array): void {
  for (let i = 0; i < add.length; i++) w[at + i] += add[i];
}

/**
 * Weights for a further update on the same rollout batch (SPEC §4, several updates per batch): the trace term is
 * clipped and masked by ρ_t = π_θ(t)/π_old(t) on the trace tokens and ⟨answer_start⟩.
 */
export function ratioWeights(batch: ScoredBatch, oldLogprobs: Float32Array, newLogprobs: Float32Array): Float32Array {
  const w = new Float32Array(batch.packed.length);
  for (const s of batch.spans) {
    const a = s.start + sequenceOffsets(s).trace;
    const ratios = new Float64Array(s.traceLen + 1);
    for (let j = 0; j <= s.traceLen; j++) ratios[j] = Math.exp(newLogprobs[a + j] - oldLogprobs[a + j]);
    addAt(w, s.start, traceSequenceWeights(s, batch.scores[s.group], s.k, s.norm, ratios));
  }
  return w;
}

/** SFT (SPEC §5): prompt ⊕ ⟨answer_start⟩ ⊕ y* with weight 1/G on ⟨answer_start⟩ and y*. */
export function packSft(
  groups: readonly Pick<QuestionGroup, "prompt" | "answer">[],
  answerStartId: number,
): { packed: Packed; seqs: SeqBatch; weights: Float32Array } {
  const packed = new Packed();
  const weights: number[] = [];
  for (const q of groups) {
    packed.add(nrtSequence(q.prompt, [], answerStartId, q.answer));
    for (const x of sftSequenceWeights(q.prompt.length, q.answer.length, groups.length)) weights.push(x);
  }
  return { packed, seqs: packed.arrays(), weights: Float32Array.from(weights) };
}

/** `packSft` + one native forward, kept in the engine for a backward (`nrt grad`). */
export function sftBatch(
  model: Model,
  groups: readonly Pick<QuestionGroup, "prompt" | "answer">[],
  answerStartId: number,
): { packed: Packed; forward: Scored; weights: Float32Array } {
  const b = packSft(groups, answerStartId);
  return { ...b, forward: model.runner.forward(b.seqs.tokens, b.seqs.lens) };
}
