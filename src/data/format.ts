import { endOfTurnId } from "../chat/end-of-turn.js";
import type { ChatMessage, ChatTemplate } from "../chat/template.js";
import { NrtError } from "../errors.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import type { QaRecord } from "./qa.js";

/** A question–answer pair as token ids: prompt(x) and y* (ending with its end token: ⟨eos⟩ or the end-of-turn), SPEC §2. */
export interface Example {
  prompt: number[];
  answer: number[];
  /** the source record */
  record: QaRecord;
}

/** The turns a record's prompt is rendered from: a chat record's turns before its answer, else one user turn. */
export function promptMessages(record: Pick<QaRecord, "question" | "messages">): ChatMessage[] {
  return record.messages ?? [{ role: "user", content: record.question }];
}

/**
 * prompt(x) as token ids. With a chat template: the template rendered for {@link promptMessages} with
 * `add_generation_prompt`, tokenised with no special tokens added (as `apply_chat_template(tokenize=True)` does:
 * the template writes ⟨bos⟩ itself where the model wants one, and it is never doubled). Without one: the plain
 * form ⟨bos⟩ ⊕ question (SPEC §7; a chat record's question is its last user turn).
 */
export function promptIds(
  tok: Tokenizer,
  template: ChatTemplate | null,
  record: Pick<QaRecord, "question" | "messages">,
  where?: string,
): number[] {
  if (template) return tok.encode(template.render(promptMessages(record), { addGenerationPrompt: true, where }));
  return [...(tok.bosId !== null ? [tok.bosId] : []), ...tok.encode(record.question)];
}

/**
 * The token y* ends with: with a chat template, the token that ends an assistant turn in it (`<|eot_id|>`,
 * `<|im_end|>`…; ⟨eos⟩ where the template writes none); without one, the model's ⟨eos⟩.
 */
export function answerEndId(tok: Tokenizer, template: ChatTemplate | null): number | null {
  return (template && endOfTurnId(tok, template)) ?? tok.eosId;
}

/**
 * Turns records into token ids: prompt(x) by {@link promptIds} (the model's chat template, or ⟨bos⟩ ⊕ question),
 * y* = answer ⊕ its end token ({@link answerEndId}). Every record must fit the context with its ⟨answer_start⟩:
 * `maxLen` tokens.
 */
export function recordExamples(
  tok: Tokenizer,
  template: ChatTemplate | null,
  records: readonly QaRecord[],
  maxLen: number,
  where: string,
): Example[] {
  const eos = answerEndId(tok, template);
  if (eos === null) throw new NrtError("the tokenizer has no ⟨eos⟩ token", where);
  return records.map((r) => {
    const at = `${where}:${r.line}`;
    checkNoSpecialText(tok, r, at);
    let prompt: number[];
    let answer: number[];
    try {
      prompt = promptIds(tok, template, r, at);
      answer = [...tok.encode(r.answer), eos];
    } catch (e) {
      if (e instanceof NrtError && e.where === undefined) throw new NrtError(e.message, at);
      throw e;
    }
    if (prompt.length === 0) throw new NrtError("empty prompt", at);
    if (prompt.length + answer.length + 1 > maxLen)
      throw new NrtError(
        `prompt and answer take ${prompt.length + answer.length + 1} tokens, more than the model's context (${maxLen})`,
        at,
      );
    return { prompt, answer, record: r };
  });
}

/**
 * The context left for prompt ⊕ ⟨answer_start⟩ ⊕ answer once `maxTraceTokens` are set aside, or an error naming
 * `flag` when the trace limit leaves none (instead of a negative "context" in every record's error).
 */
export function contextLeft(ctx: number, maxTraceTokens: number, flag = "--max-trace-tokens"): number {
  if (maxTraceTokens >= ctx)
    throw new NrtError(
      `${maxTraceTokens} is not less than the model's context (${ctx} positions): no room for the prompt and answer`,
      flag,
    );
  return ctx - maxTraceTokens;
}

/**
 * Refuses a record whose text holds a special token's string (`<answer_start>`, `</s>`, `<|im_end|>`…): the
 * tokenizer would encode it as the control token itself, so data could end a trace or an answer where it should not.
 */
function checkNoSpecialText(tok: Tokenizer, r: QaRecord, at: string): void {
  const fields: [string, string][] = [
    ["question", r.question],
    ["answer", r.answer],
    ...(r.messages ?? []).map((m, i): [string, string] => [`messages[${i}].content`, m.content]),
  ];
  for (const [name, text] of fields) {
    const sp = tok.specialTextIn(text);
    if (sp !== null)
      throw new NrtError(
        `${name} holds the text ${JSON.stringify(sp)}, which the tokenizer would read as its special token; remove it from the data`,
        at,
      );
  }
}

/** Turns records into token ids: prompt(x) = ⟨bos⟩ ⊕ question, y* = answer ⊕ ⟨eos⟩ (SPEC §7's form). */
export function plainExamples(tok: Tokenizer, records: readonly QaRecord[], maxLen: number, where: string): Example[] {
  return recordExamples(tok, null, records, maxLen, where);
}
