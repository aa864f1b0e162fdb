/**
 * A model's chat template (Hugging Face `tokenizer_config.json` `chat_template`, or `chat_template.jinja`),
 * rendered with `@huggingface/jinja` the way `transformers`' `apply_chat_template` renders it: Jinja with
 * `trim_blocks` and `lstrip_blocks`, the variables `messages`, `add_generation_prompt` and the special-token
 * strings (`bos_token`, `eos_token`, `unk_token`, `pad_token`), and `raise_exception`/`strftime_now`.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Environment, Interpreter, Template } from "@huggingface/jinja";
import { NrtError } from "../errors.js";
import { readTextLimited } from "../io/read.js";
import { JINJA_GLOBALS } from "./_jinja-globals.js";

/** One turn of a conversation. */
export interface ChatMessage {
  role: string;
  content: string;
}

/** The special-token strings a template may use, as `transformers` passes them (its `special_tokens_map`). */
export interface SpecialTokenStrings {
  bos_token?: string;
  eos_token?: string;
  unk_token?: string;
  pad_token?: string;
}

export const TOKENIZER_CONFIG_FILE = "tokenizer_config.json";
/** transformers ≥ 4.4x writes the template to its own file; it takes precedence over tokenizer_config.json's */
export const CHAT_TEMPLATE_FILE = "chat_template.jinja";

const SPECIAL_KEYS = ["bos_token", "eos_token", "unk_token", "pad_token"] as const;

/** A compiled chat template with the special-token strings it is rendered with. */
export class ChatTemplate {
  readonly source: string;
  readonly specialTokens: Readonly<SpecialTokenStrings>;
  private readonly where: string;
  private readonly template: Template;

  /** Compiles `source`; a syntax error is an NrtError at `where`. */
  constructor(source: string, specialTokens: SpecialTokenStrings = {}, where = "chat_template") {
    this.source = source;
    this.specialTokens = { ...specialTokens };
    this.where = where;
    try {
      this.template = new Template(source);
    } catch (e) {
      throw new NrtError(`cannot parse the chat template: ${(e as Error).message}`, where);
    }
  }

  /**
   * The prompt text for `messages`: `apply_chat_template(messages, tokenize=False, add_generation_prompt=…)`.
   * A template's `raise_exception(…)` or a runtime error is an NrtError at `where` (default: the template's file).
   */
  render(messages: readonly ChatMessage[], { addGenerationPrompt = true, where = this.where } = {}): string {
    try {
      // Template.render, with nrt's globals (a bounded range): see _jinja-globals.ts
      const env = new Environment();
      const items = {
        ...JINJA_GLOBALS,
        ...this.specialTokens,
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: addGenerationPrompt,
      };
      for (const [k, v] of Object.entries(items)) env.set(k, v);
      return String(new Interpreter(env).run(this.template.parsed).value);
    } catch (e) {
      throw new NrtError(`chat template: ${(e as Error).message}`, where);
    }
  }
}

/** A special token as tokenizer_config.json writes it: a string, or an AddedToken object with `content`. */
function tokenString(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "object" && v !== null && typeof (v as { content?: unknown }).content === "string")
    return (v as { content: string }).content;
  return undefined;
}

/**
 * The chat template of a model directory, or null when it has none: `chat_template.jinja` if present, else
 * `tokenizer_config.json`'s `chat_template` (a string, or a list of `{name, template}` of which `default` is
 * used, as transformers does). Special-token strings come from tokenizer_config.json; `fallback` fills those it
 * lacks (e.g. from the tokenizer's ⟨bos⟩/⟨eos⟩ ids).
 */
export function readChatTemplate(dir: string, fallback: SpecialTokenStrings = {}): ChatTemplate | null {
  const cfgPath = join(dir, TOKENIZER_CONFIG_FILE);
  let cfg: Record<string, unknown> = {};
  if (existsSync(cfgPath)) {
    let v: unknown;
    const text = readTextLimited(cfgPath, TOKENIZER_CONFIG_FILE);
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new NrtError(`not valid JSON (${(e as Error).message})`, cfgPath);
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new NrtError("must hold a JSON object", cfgPath);
    cfg = v as Record<string, unknown>;
  }
  const special: SpecialTokenStrings = { ...fallback };
  for (const k of SPECIAL_KEYS) {
    const s = tokenString(cfg[k]);
    if (s !== undefined) special[k] = s;
  }
  const filePath = join(dir, CHAT_TEMPLATE_FILE);
  if (existsSync(filePath)) return new ChatTemplate(readTextLimited(filePath, "chat template"), special, filePath);
  const t = cfg.chat_template;
  if (t === undefined || t === null) return null;
  const where = `${cfgPath}: chat_template`;
  if (typeof t === "string") return new ChatTemplate(t, special, where);
  if (Array.isArray(t)) {
    const named = t.find((x) => (x as { name?: unknown })?.name === "default") as { template?: unknown } | undefined;
    if (typeof named?.template === "string") return new ChatTemplate(named.template, special, where);
    throw new NrtError('a list of templates needs one named "default" with a string "template"', where);
  }
  throw new NrtError(`must be a string or a list of {name, template}, got ${JSON.stringify(t)}`, where);
}
