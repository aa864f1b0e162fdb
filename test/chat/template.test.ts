// Chat templates rendered as transformers' apply_chat_template renders them. The templates are the ones shipped in
// the models' tokenizer_config.json (written here as the same JSON string literals); the expected strings were
// worked out by hand from Jinja's rules (trim_blocks and lstrip_blocks on, as transformers sets them), and checked
// once against Python's Jinja2 3.1.6 in transformers' environment (ImmutableSandboxedEnvironment, trim_blocks,
// lstrip_blocks, loopcontrols, raise_exception).
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ChatTemplate, readChatTemplate } from "../../src/chat/template.js";
import { promptIds, recordExamples } from "../../src/data/format.js";
import { parseQaLine, type QaRecord } from "../../src/data/qa.js";
import { NrtError } from "../../src/errors.js";
import { Tokenizer } from "../../src/tokenizer/tokenizer.js";
import { llama2Json, llama3Json } from "../tokenizer/hand-built.js";

/** meta-llama/Llama-2-7b-chat-hf (ignores add_generation_prompt: the prompt ends with ` [/INST]`) */
const LLAMA2 =
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

/** Qwen/Qwen2-7B-Instruct: ChatML with a default system turn */
const CHATML =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/** meta-llama/Meta-Llama-3-8B-Instruct (`| trim` binds tighter than `+`) */
const LLAMA3 =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

/** HuggingFaceH4/zephyr-7b-beta: one tag a line, so the output depends on trim_blocks/lstrip_blocks */
const ZEPHYR =
  "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";

const LLAMA2_TOKENS = { bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>" };
const LLAMA3_TOKENS = { bos_token: "<|begin_of_text|>", eos_token: "<|eot_id|>" };

const conversation = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "What is 2+2?" },
  { role: "assistant", content: "4" },
  { role: "user", content: " And 3+3? " },
];

describe("chat templates render as transformers does", () => {
  it("Llama 2 [INST]", () => {
    const t = new ChatTemplate(LLAMA2, LLAMA2_TOKENS);
    expect(t.render([{ role: "user", content: "a1,b+2;b" }])).toBe("<s>[INST] a1,b+2;b [/INST]");
    expect(t.render(conversation)).toBe(
      "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nWhat is 2+2? [/INST] 4 </s><s>[INST] And 3+3? [/INST]",
    );
  });

  it("Llama 2 [INST]: the template's raise_exception is an NrtError at the record", () => {
    const t = new ChatTemplate(LLAMA2, LLAMA2_TOKENS);
    const bad = [
      { role: "user", content: "a" },
      { role: "user", content: "b" },
    ];
    expect(() => t.render(bad, { where: "qa.jsonl:7" })).toThrow(NrtError);
    expect(() => t.render(bad, { where: "qa.jsonl:7" })).toThrow(/qa\.jsonl:7: .*roles must alternate/);
  });

  it("ChatML (Qwen 2), with and without a system turn", () => {
    const t = new ChatTemplate(CHATML, { eos_token: "<|im_end|>" });
    expect(t.render([{ role: "user", content: "Hi" }])).toBe(
      "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    );
    expect(t.render(conversation)).toBe(
      "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n" +
        "<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\n And 3+3? <|im_end|>\n<|im_start|>assistant\n",
    );
    expect(t.render([{ role: "user", content: "Hi" }], { addGenerationPrompt: false })).toBe(
      "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
    );
  });

  it("Llama 3", () => {
    const t = new ChatTemplate(LLAMA3, LLAMA3_TOKENS);
    expect(t.render(conversation)).toBe(
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nAnd 3+3?<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    );
  });

  it("Zephyr: a template laid out one tag a line (trim_blocks, lstrip_blocks)", () => {
    const t = new ChatTemplate(ZEPHYR, { eos_token: "</s>" });
    expect(
      t.render([
        { role: "system", content: "S" },
        { role: "user", content: "Q" },
      ]),
    ).toBe("<|system|>\nS</s>\n<|user|>\nQ</s>\n<|assistant|>\n");
  });

  it("a syntax error names the file", () => {
    expect(() => new ChatTemplate("{% for m in messages %}", {}, "x/tokenizer_config.json")).toThrow(
      /x\/tokenizer_config\.json: cannot parse the chat template/,
    );
  });
});

describe("readChatTemplate", () => {
  const dir = () => mkdtempSync(join(tmpdir(), "nrt-chat-"));

  it("tokenizer_config.json: the template and its special tokens (strings or AddedToken objects)", () => {
    const d = dir();
    const bos = { __type: "AddedToken", content: "<s>", lstrip: false, normalized: false, rstrip: false };
    writeFileSync(
      join(d, "tokenizer_config.json"),
      JSON.stringify({ chat_template: LLAMA2, bos_token: bos, eos_token: "</s>" }),
    );
    const t = readChatTemplate(d);
    expect(t?.specialTokens).toEqual({ bos_token: "<s>", eos_token: "</s>" });
    expect(t?.render([{ role: "user", content: "x" }])).toBe("<s>[INST] x [/INST]");
  });

  it("a list of named templates uses `default`; chat_template.jinja takes precedence", () => {
    const d = dir();
    const list = [
      { name: "tool_use", template: "TOOLS" },
      { name: "default", template: CHATML },
    ];
    writeFileSync(join(d, "tokenizer_config.json"), JSON.stringify({ chat_template: list }));
    expect(readChatTemplate(d)?.source).toBe(CHATML);
    writeFileSync(join(d, "chat_template.jinja"), `${LLAMA3}\n`);
    const t = readChatTemplate(d, { bos_token: "<|begin_of_text|>" });
    expect(t?.render([{ role: "user", content: "x" }])).toBe(
      "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    );
  });

  it("no template: null; a bad one: an error naming the file", () => {
    const d = dir();
    expect(readChatTemplate(d)).toBeNull();
    writeFileSync(join(d, "tokenizer_config.json"), JSON.stringify({ bos_token: "<s>" }));
    expect(readChatTemplate(d)).toBeNull();
    writeFileSync(join(d, "tokenizer_config.json"), "{nope");
    expect(() => readChatTemplate(d)).toThrow(/tokenizer_config\.json: not valid JSON/);
    writeFileSync(join(d, "tokenizer_config.json"), JSON.stringify({ chat_template: 3 }));
    expect(() => readChatTemplate(d)).toThrow(/chat_template: must be a string/);
  });
});

describe("prompts and answers as token ids", () => {
  const record = (o: object, line = 1): QaRecord => {
    const r = parseQaLine(JSON.stringify(o), line);
    if ("message" in r) throw new Error(r.message);
    return r;
  };

  it("a template that writes ⟨bos⟩ gets no second one; y* = answer ⊕ ⟨eos⟩", () => {
    const tok = Tokenizer.fromJson(llama2Json());
    const t = new ChatTemplate(LLAMA2, LLAMA2_TOKENS);
    const r = record({ question: "the a", answer: "he" });
    const ids = promptIds(tok, t, r);
    expect(ids).toEqual(tok.encode("<s>[INST] the a [/INST]"));
    expect(ids[0]).toBe(tok.bosId);
    expect(ids.filter((i) => i === tok.bosId)).toHaveLength(1);
    const [ex] = recordExamples(tok, t, [r], 1000, "qa.jsonl");
    expect(ex.prompt).toEqual(ids);
    expect(ex.answer).toEqual([...tok.encode("he"), tok.eosId]);
  });

  it("Llama 3: ⟨bos⟩ and the header tokens are single added tokens", () => {
    const tok = Tokenizer.fromJson(llama3Json());
    const t = new ChatTemplate(LLAMA3, LLAMA3_TOKENS);
    const ids = promptIds(tok, t, record({ question: "hello", answer: "the" }));
    const bos = tok.tokenToId("<|begin_of_text|>");
    expect(ids[0]).toBe(bos);
    expect(ids.filter((i) => i === bos)).toHaveLength(1);
    expect(tok.decode(ids)).toBe(
      "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    );
  });

  it("the chat form renders every turn before the last assistant turn", () => {
    const tok = Tokenizer.fromJson(llama2Json());
    const t = new ChatTemplate(LLAMA2, LLAMA2_TOKENS);
    const r = record({
      messages: [...conversation, { role: "assistant", content: "6" }, { role: "user", content: "x" }],
    });
    const [ex] = recordExamples(tok, t, [r], 1000, "qa.jsonl");
    expect(ex.prompt).toEqual(
      tok.encode(
        "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nWhat is 2+2? [/INST] 4 </s><s>[INST] And 3+3? [/INST]",
      ),
    );
    expect(ex.answer).toEqual([...tok.encode("6"), tok.eosId]);
  });

  it("no template: the plain form ⟨bos⟩ ⊕ question (a chat record's last user turn)", () => {
    const tok = Tokenizer.fromJson(llama2Json());
    const [a, b] = recordExamples(
      tok,
      null,
      [
        record({ question: "the a", answer: "he" }),
        record({ messages: conversation.concat({ role: "assistant", content: "6" }) }),
      ],
      1000,
      "qa.jsonl",
    );
    expect(a.prompt).toEqual([tok.bosId, ...tok.encode("the a")]);
    expect(b.prompt).toEqual([tok.bosId, ...tok.encode(" And 3+3? ")]);
  });

  it("a record longer than the context is an error at its line", () => {
    const tok = Tokenizer.fromJson(llama2Json());
    const t = new ChatTemplate(LLAMA2, LLAMA2_TOKENS);
    expect(() => recordExamples(tok, t, [record({ question: "the a", answer: "he" }, 4)], 8, "qa.jsonl")).toThrow(
      /qa\.jsonl:4: prompt and answer take \d+ tokens/,
    );
  });
});
