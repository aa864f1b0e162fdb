/**
 * One reply to a question or a conversation, generated as training lays a sequence out (SPEC §2): the trace, then
 * ⟨answer_start⟩, then the answer. What `nrt chat` prints; the sampling itself is src/model/generate.ts.
 */
import type { ChatMessage } from "../chat/template.js";
import { promptIds } from "../data/format.js";
import type { LoadedModel } from "../io/load.js";
import { generate, traceEnd } from "../model/generate.js";

/** Sampling settings of one reply; the names and meanings of `nrt train`'s and `nrt sample`'s flags. */
export interface ReplyOptions {
  /** 0 means greedy */
  temperature: number;
  topP: number;
  /** 0: off */
  topK: number;
  /** answer limit in tokens */
  maxNewTokens: number;
  /** trace limit in tokens (0: answer at once) */
  maxTraceTokens: number;
  /** the trace is sampled with `seed`, the answer with `seed + 1` */
  seed: number;
}

/** A reply: the reasoning trace z and the answer after ⟨answer_start⟩, as text and token ids. */
export interface Reply {
  trace: string;
  answer: string;
  traceTokens: number[];
  answerTokens: number[];
  /** the model ended its trace with ⟨answer_start⟩ itself */
  emitted: boolean;
  /** the trace was cut at `maxTraceTokens` */
  truncated: boolean;
  /** the answer ended on ⟨eos⟩ (else it was cut at `maxNewTokens` or the context) */
  finished: boolean;
}

/**
 * Answers `input` (one user turn's text, or the turns of a conversation) as training and `nrt eval` lay a sequence
 * out (SPEC §2): prompt(x) (the model's chat template, else ⟨bos⟩ ⊕ text), then a trace sampled until the first
 * special token or `maxTraceTokens`, then ⟨answer_start⟩ (the special token that ended the trace is dropped, a cut
 * trace is kept), then the answer sampled until ⟨eos⟩. A model without ⟨answer_start⟩ has no trace: its whole
 * output is the answer.
 */
export function reply(loaded: LoadedModel, input: string | readonly ChatMessage[], o: ReplyOptions): Reply {
  const { model, tokenizer: tok, chatTemplate } = loaded;
  const record = typeof input === "string" ? { question: input } : { question: lastUser(input), messages: [...input] };
  const prompt = promptIds(tok, chatTemplate, record);
  const as = tok.answerStartId ?? model.config.answerStartTokenId;
  const eos = tok.eosId;
  const room = (used: number) => Math.max(0, model.config.maxPositionEmbeddings - used);
  const sample = (ctx: number[], maxNew: number, stop: number[], seed: number) =>
    generate(model, [ctx], { maxNew, temperature: o.temperature, topP: o.topP, topK: o.topK, seed, stop })[0];
  let z: number[] = [];
  let emitted = false;
  let truncated = false;
  let ctx = prompt;
  if (as !== null) {
    const specials = [...new Set([...tok.specialIds, as, ...(eos !== null ? [eos] : [])])];
    const t = sample(prompt, Math.min(o.maxTraceTokens, Math.max(0, room(prompt.length) - 1)), specials, o.seed);
    z = t.tokens;
    emitted = traceEnd(t, as) === "answer_start";
    truncated = traceEnd(t, as) === "limit" && o.maxTraceTokens > 0;
    ctx = [...prompt, ...z, as];
  }
  const a = sample(ctx, Math.min(o.maxNewTokens, room(ctx.length)), eos !== null ? [eos] : [], o.seed + 1);
  const y = a.tokens;
  return {
    trace: tok.decode(z, { skipSpecial: true }),
    answer: tok.decode(y, { skipSpecial: true }),
    traceTokens: z,
    answerTokens: y,
    emitted,
    truncated,
    finished: a.stopId >= 0,
  };
}

function lastUser(messages: readonly ChatMessage[]): string {
  return [...messages].reverse().find((m) => m.role === "user")?.content ?? "";
}
