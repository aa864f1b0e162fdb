/**
 * nrt's question–answer records as rows of recipe/nrt's parquet, with the columns its data script writes
 * (`recipe/nrt/data/scripts/tulu-3-sft-mixture.py` with `template.py`'s "v1" template) and its dataset reads
 * (`verl/utils/dataset/rl_dataset.py`: `prompt`, `extra_info.index`; `recipe/nrt/nrt_ray_trainer.py`:
 * `think_prefix`, `response_prefix`, `reference_content`).
 */
import { basename } from "node:path";
import type { ChatMessage } from "../chat/template.js";
import { promptMessages } from "../data/format.js";
import type { QaRecord } from "../data/qa.js";
import { RESPONSE_START } from "./verl-nrt-model.js";

/** One row of train.parquet / test.parquet. */
export interface VerlNrtRow {
  data_source: string;
  /** the turns verl renders with the model's chat template (`apply_chat_template(…, add_generation_prompt=True)`) */
  prompt: ChatMessage[];
  /** the same turns: template "v1" builds `gen_prompt` like `prompt` */
  gen_prompt: ChatMessage[];
  /** nrt has no think-start marker; the recipe's trainer passes this column on and never reads it */
  think_prefix: string;
  /** the token between trace and answer: nrt's ⟨answer_start⟩ */
  response_prefix: string;
  /** y* without ⟨eos⟩: the recipe appends `tokenizer.eos_token` itself */
  reference_content: string;
  reward_model: { style: string; ground_truth: string };
  ability: string;
  extra_info: {
    /** 0-based row number (verl's RLHFDataset reads `extra_info.index`) */
    index: number;
    /** `file:line` of the source record */
    id: string;
    /** the source file's name */
    source: string;
    /** 1-based line of the source record */
    line: number;
    /** the prompt turns followed by the answer as an assistant turn */
    original_messages: ChatMessage[];
  };
}

export const DATA_SOURCE = "nrt";

/** The rows of `records` (read from `file` by `readQaFile`), in file order. */
export function verlNrtRows(records: readonly QaRecord[], file: string): VerlNrtRow[] {
  const source = basename(file);
  return records.map((r, index) => {
    const prompt = promptMessages(r).map((m) => ({ role: m.role, content: m.content }));
    return {
      data_source: DATA_SOURCE,
      prompt,
      gen_prompt: prompt.map((m) => ({ ...m })),
      think_prefix: "",
      response_prefix: RESPONSE_START,
      reference_content: r.answer,
      reward_model: { style: "rule", ground_truth: r.answer },
      ability: "general",
      extra_info: {
        index,
        id: `${source}:${r.line}`,
        source,
        line: r.line,
        original_messages: [...prompt.map((m) => ({ ...m })), { role: "assistant", content: r.answer }],
      },
    };
  });
}
