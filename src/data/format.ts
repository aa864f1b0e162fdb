import { NrtError } from "../errors.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import type { QaRecord } from "./qa.js";

/** A question–answer pair as token ids: prompt(x) and y* (ending with ⟨eos⟩), SPEC §2. */
export interface Example {
  prompt: number[];
  answer: number[];
  /** the source record */
  record: QaRecord;
}

/** Turns records into token ids: prompt(x) = ⟨bos⟩ ⊕ question, y* = answer ⊕ ⟨eos⟩ (SPEC §7's form). */
export function plainExamples(tok: Tokenizer, records: readonly QaRecord[], maxLen: number, where: string): Example[] {
  if (tok.eosId === null) throw new NrtError("the tokenizer has no ⟨eos⟩ token", where);
  const eos = tok.eosId;
  const bos = tok.bosId;
  return records.map((r) => {
    const prompt = [...(bos !== null ? [bos] : []), ...tok.encode(r.question)];
    const answer = [...tok.encode(r.answer), eos];
    if (prompt.length === 0) throw new NrtError("empty prompt", `${where}:${r.line}`);
    if (prompt.length + answer.length + 1 > maxLen)
      throw new NrtError(
        `prompt and answer take ${prompt.length + answer.length + 1} tokens, more than the model's context (${maxLen})`,
        `${where}:${r.line}`,
      );
    return { prompt, answer, record: r };
  });
}
