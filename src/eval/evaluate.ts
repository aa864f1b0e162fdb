import { answerEndId, contextLeft, recordExamples } from "../data/format.js";
import type { QaRecord } from "../data/qa.js";
import { NrtError } from "../errors.js";
import { type LoadedModel, withAnswerStart } from "../io/load.js";
import { LONGEST_SENTENCE, longAnswerCorrect } from "../world/long-answer.js";
import { type ParsedQuestion, parseQuestion } from "../world/question.js";
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
  /** the model had no ⟨answer_start⟩: it was added in memory as training would add it (SPEC §2) */
  answer_start_added: boolean;
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
 *   reference exactly — for a chainlong question, when it parses into the reference's (variable, value) pairs in
 *   order, whatever the phrasing (`exact` keeps the string match); the answer limit then leaves room for the
 *   longest phrasing of every sentence;
 * - decision: π(⟨answer_start⟩ | prompt); hard tokens: π(y*_i | prompt, ∅) against π(y*_i | prompt, z_free)
 *   teacher-forced.
 * Each phase runs all questions as one batch. Questions that are not chain questions go to `by_k["?"]`.
 */
export function evaluate(given: LoadedModel, records: readonly QaRecord[], opts: EvalOptions = {}): EvalResult {
  const { maxTraceTokens = 64, seed = 0, maxAnswerTokens = 32, samples = 3, where = "data" } = opts;
  const phase = opts.onPhase ?? (() => {});
  if (!Number.isInteger(maxTraceTokens) || maxTraceTokens < 1)
    throw new NrtError(`must be an integer ≥ 1, got ${maxTraceTokens}`, "maxTraceTokens");
  if (records.length === 0) throw new NrtError("no records to evaluate", where);
  const { loaded: withAs, added } = withAnswerStart(given); // SPEC §2, as training would: a base can be measured
  const { model, tokenizer: tok } = withAs;
  const as = tok.answerStartId!; // withAnswerStart guarantees it
  contextLeft(model.config.maxPositionEmbeddings, maxTraceTokens); // a trace limit past the context is refused
  const examples = recordExamples(tok, withAs.chatTemplate, records, model.config.maxPositionEmbeddings, where);
  const eos = answerEndId(tok, withAs.chatTemplate)!; // y*'s end token (recordExamples has checked it)
  const stop = [...new Set([...tok.specialIds, as, eos])];
  const forcedIds = tok.encode(FORCED_TRACE_TEXT).slice(0, maxTraceTokens);
  if (forcedIds.length === 0) throw new NrtError(`cannot encode ${FORCED_TRACE_TEXT}`, withAs.dir);
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
  const parsed = examples.map((e) => parseOrNull(e.record.question));
  const limit = examples.reduce(
    (m, e, i) =>
      Math.max(m, e.answer.length, parsed[i]?.world === "chainlong" ? parsed[i].queried.length * LONGEST_SENTENCE : 0),
    maxAnswerTokens,
  );
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
    const long = parsed[i]?.world === "chainlong";
    const run = (r: number): RunResult => {
      const g = runs[r][i];
      const a = answers[r * n + i];
      const prediction = decodeLoose(tok, a.tokens);
      const exact = a.eos && prediction === reference;
      return {
        trace: g.trace,
        traceText: decodeLoose(tok, g.trace),
        end: g.end,
        traceEntropy: g.entropy,
        prediction,
        eos: a.eos,
        correct: long ? a.eos && longAnswerCorrect(prediction, reference) : exact,
        exact,
      };
    };
    const b = noTrace[i].slice(1).map(Math.exp);
    return {
      question: e.record.question,
      answer: reference,
      k: parsed[i] ? parsed[i].steps.length + 1 : null,
      free: run(0),
      sampled: run(1),
      direct: run(2),
      forced: run(3),
      pAnswerStart: Math.exp(noTrace[i][0]),
      pNoTrace: b,
      pAfterTrace: after.get(i)?.map(Math.exp) ?? b,
      answerLogprob: { trace: meanOf(after.get(i) ?? noTrace[i].slice(1)), direct: meanOf(noTrace[i].slice(1)) },
    };
  });
  return { ...report(questions), answer_start_added: added, questions, samples: pickSamples(questions, samples) };
}

const meanOf = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** A chain/chain2/chainlong question taken apart, or null for any other question. */
function parseOrNull(question: string): ParsedQuestion | null {
  try {
    return parseQuestion(question);
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
