/**
 * The token that ends an assistant turn in a chat template (`<|eot_id|>` for Llama-3, `<|im_end|>` for Qwen2,
 * `</s>` for Llama-2, `<end_of_turn>` for Gemma): the answer of a record rendered with a template is trained to end
 * in it, and generation stops there (SPEC §2's y*_T is then the end-of-turn, not the model's ⟨eos⟩).
 */
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import type { ChatTemplate } from "./template.js";

/** Text no template writes by itself, to find where the assistant's content ends in a rendering. */
const MARK = "NRT-ANSWER-7f3c9";

/**
 * The first special token the template writes after an assistant turn's content, found by rendering one user turn
 * and one assistant turn holding a marker and looking for the special tokens' texts after it; null when the template
 * writes none (or cannot render such a turn).
 */
export function endOfTurnId(tok: Tokenizer, template: ChatTemplate): number | null {
  let text: string;
  try {
    text = template.render(
      [
        { role: "user", content: "hi" },
        { role: "assistant", content: MARK },
      ],
      { addGenerationPrompt: false },
    );
  } catch {
    return null;
  }
  const at = text.indexOf(MARK);
  if (at < 0) return null;
  const after = text.slice(at + MARK.length);
  // the special token whose text comes first after the content (read as text: any tokenizer, nothing to encode)
  let best: { id: number; pos: number; len: number } | null = null;
  for (const id of tok.specialIds) {
    const s = tok.idToToken(id);
    if (!s) continue;
    const pos = after.indexOf(s);
    if (pos >= 0 && (!best || pos < best.pos || (pos === best.pos && s.length > best.len)))
      best = { id, pos, len: s.length };
  }
  return best?.id ?? null;
}
