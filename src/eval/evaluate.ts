import { contextLeft, recordExamples } from "../data/format.js";
import type { QaRecord } from "../data/qa.js";
import { NrtError } from "../errors.js";
import type { LoadedModel } from "../io/load.js";
import { parseQuestion } from "../world/question.js";
import { answer, decodeLoose, type Generated, spanLogprobs, traces } from "./_batch.js";
import { type EvalReport, type QuestionResult, type RunResult, report } from "./metrics.js";

export interface EvalOptions {
  /** trace limit in tokens (SPEC §7: 64); a forced trace counts its forced token(s) against it */
  maxTraceTokens?: number;
  /** seed of the temperature-1 traces of `accuracy_sampled` */
  seed?: number;
  /** answer limit in tokens, raised when needed to the longest reference answer with its ⟨eos⟩ */
  maxAnswerTokens?: number;
  /** how many questions to return as `samples` (default 3) */
  samples?: number;
  /** names the data in error messages */
  where?: string;
  /** called as each phase starts, for progress output */
  onPhase?: (phase: string) => void;
}

/** One question as text, for reports. */
export interface EvalSample {
  question: string;
  reference: string;
  k: number | null;
  trace: string;
  predicted: string;
  correct: boolean;
  sampled_trace: string;
  sampled_predicted: string;
  sampled_correct: boolean;
  direct_predicted: string;
  direct_correct: boolean;
  forced_trace: string;
  forced_predicted: string;
  forced_correct: boolean;
}

/** The SPEC §7 metrics (what `nrt eval --json` prints), with every question's outcomes and a few samples. */
export interface EvalResult extends EvalReport {
  /** every question's outcomes, in data order */
  questions: QuestionResult[];
  /** a few questions, one per k in turn (increasing k), in data order within a k */
  samples: EvalSample[];
}

/** The text SPEC §7 forces as the first trace token: the name of the second variable. */
export const FORCED_TRACE_TEXT = "b";

/**
 * SPEC §7 `nrt eval`. Per question, with prompt(x) = ⟨bos⟩ ⊕ question and y* = answer ⊕ ⟨eos⟩:
 * - free run: greedy trace after the prompt until the first special token or `maxTraceTokens`; the sequence is
 *   rebuilt as prompt ⊕ z ⊕ ⟨answer_start⟩ (SPEC §2: the ending special token, ⟨answer_start⟩ or any other, is
 *   dropped; a trace cut at the limit is kept) and the answer is decoded greedily until ⟨eos⟩;
 * - sampled: the same with the trace sampled at temperature 1 (no top-k/top-p), seeded by `seed` and the
 *   question's index in `records`;
 * - direct: prompt ⊕ ⟨answer_start⟩, greedy answer; forced: the trace starts with the tokens of `b`;
 * - an answer is correct when it ends on ⟨eos⟩ within the answer limit and the text before ⟨eos⟩ equals the
 *   reference exactly;
 * - decision: π(⟨answer_start⟩ | prompt); hard tokens: π(y*_i | prompt, ∅) against π(y*_i | prompt, z_free)
 *   teacher-forced.
 * Each phase runs all questions as one batch. Questions that are not chain questions go to `by_k["?"]`.
 */
export function evaluate(loaded: LoadedModel, records: readonly QaRecord[], opts: EvalOptions = {}): EvalResult {
  const { maxTraceTokens = 64, seed = 0, maxAnswerTokens = 32, samples = 3, where = "data" } = opts;
  const phase = opts.onPhase ?? (() => {});
  const { model, tokenizer: tok } = loaded;
  if (!Number.isInteger(maxTraceTokens) || maxTraceTokens < 1)
    throw new NrtError(`must be an integer ≥ 1, got ${maxTraceTokens}`, "maxTraceTokens");
  if (records.length === 0) throw new NrtError("no records to evaluate", where);
  const as = tok.answerStartId ?? model.config.answerStartTokenId;
  if (as === null) throw new NrtError("the model has no <answer_start> token (SPEC §2)", loaded.dir);
  contextLeft(model.config.maxPositionEmbeddings, maxTraceTokens); // a trace limit past the context is refused
  const examples = recordExamples(tok, loaded.chatTemplate, records, model.config.maxPositionEmbeddings, where);
  const eos = tok.eosId!; // recordExamples has checked it
  const stop = [...new Set([...tok.specialIds, as, eos])];
  const forcedIds = tok.encode(FORCED_TRACE_TEXT).slice(0, maxTraceTokens);
  if (forcedIds.length === 0) throw new NrtError(`cannot encode ${FORCED_TRACE_TEXT}`, loaded.dir);
  const prompts = examples.map((e) => e.prompt);

  const gen = { stop, answerStartId: as, seed };
  phase("greedy traces");
  const free = traces(model, prompts, { ...gen, maxNew: maxTraceTokens, temperature: 0 });
  phase("sampled traces");
  const sampled = traces(model, prompts, { ...gen, maxNew: maxTraceTokens, temperature: 1 });
  phase("forced traces");
  const forced = traces(
    model,
    prompts.map((p) => [...p, ...forcedIds]),
    { ...gen, maxNew: maxTraceTokens - forcedIds.length, temperature: 0 },
  ).map((g) => ({ ...g, trace: [...forcedIds, ...g.trace] }));
  const direct: Generated[] = prompts.map(() => ({ trace: [], end: "none", entropy: [] }));

  phase("answers");
  const runs = [free, sampled, direct, forced];
  const limit = examples.reduce((m, e) => Math.max(m, e.answer.length), maxAnswerTokens);
  const answers = answer(
    model,
    runs.flatMap((run) => run.map((g, i) => [...prompts[i], ...g.trace, as])),
    limit,
    eos,
  );

  phase("answer probabilities");
  const noTrace = spanLogprobs(
    model,
    examples.map((e) => ({ tokens: [...e.prompt, as, ...e.answer], from: e.prompt.length })),
  );
  const traced = examples.map((e, i) => ({ i, tokens: [...e.prompt, ...free[i].trace, as, ...e.answer] }));
  const withTrace = traced.filter((t) => free[t.i].trace.length > 0);
  const afterLp = spanLogprobs(
    model,
    withTrace.map((t) => ({ tokens: t.tokens, from: t.tokens.length - examples[t.i].answer.length })),
  );
  const after = new Map(withTrace.map((t, j) => [t.i, afterLp[j]]));

  const n = examples.length;
  const questions: QuestionResult[] = examples.map((e, i) => {
    const reference = decodeLoose(tok, e.answer.slice(0, -1));
    const run = (r: number): RunResult => {
      const g = runs[r][i];
      const a = answers[r * n + i];
      const prediction = decodeLoose(tok, a.tokens);
      return {
        trace: g.trace,
        traceText: decodeLoose(tok, g.trace),
        end: g.end,
        traceEntropy: g.entropy,
        prediction,
        eos: a.eos,
        correct: a.eos && prediction === reference,
      };
    };
    const b = noTrace[i].slice(1).map(Math.exp);
    return {
      question: e.record.question,
      answer: reference,
      k: chainK(e.record.question),
      free: run(0),
      sampled: run(1),
      direct: run(2),
      forced: run(3),
      pAnswerStart: Math.exp(noTrace[i][0]),
      pNoTrace: b,
      pAfterTrace: after.get(i)?.map(Math.exp) ?? b,
    };
  });
  return { ...report(questions), questions, samples: pickSamples(questions, samples) };
}

/** Number of variables of a chain/chain2 question, or null. */
export function chainK(question: string): number | null {
  try {
    return parseQuestion(question).steps.length + 1;
  } catch {
    return null;
  }
}

/** Up to `n` questions, taking one per k in turn (increasing k, "?" last), in data order within a k. */
function pickSamples(qs: QuestionResult[], n: number): EvalSample[] {
  const byK = new Map<number, QuestionResult[]>();
  for (const q of qs) {
    const k = q.k ?? Number.POSITIVE_INFINITY;
    const g = byK.get(k);
    if (g) g.push(q);
    else byK.set(k, [q]);
  }
  const groups = [...byK.entries()].sort((a, b) => a[0] - b[0]).map(([, g]) => g);
  const picked: QuestionResult[] = [];
  for (let round = 0; picked.length < Math.min(n, qs.length); round++)
    for (const g of groups) if (round < g.length && picked.length < n) picked.push(g[round]);
  return picked.map((q) => ({
    question: q.question,
    reference: q.answer,
    k: q.k,
    trace: q.free.traceText,
    predicted: q.free.prediction,
    correct: q.free.correct,
    sampled_trace: q.sampled.traceText,
    sampled_predicted: q.sampled.prediction,
    sampled_correct: q.sampled.correct,
    direct_predicted: q.direct.prediction,
    direct_correct: q.direct.correct,
    forced_trace: q.forced.traceText,
    forced_predicted: q.forced.prediction,
    forced_correct: q.forced.correct,
  }));
}
