import type { z } from "zod";
import { camel, snake } from "../util/case.js";

/**
 * How `nrt export --format verl-nrt` (src/export/verl-nrt-overrides.ts) treats a setting: it sets these recipe/nrt
 * keys, or the export uses the setting itself (`keys` says which); recipe/nrt has no counterpart (`none`: why, as the
 * export lists it); or it goes with another setting's entry (`with`: that setting, e.g. the engine's own settings
 * with `engine`).
 */
export type VerlFact = { keys: string } | { none: string } | { with: string };

/** What a field declares besides its type, default and doc. */
export interface FieldFacts {
  /** short CLI alias, e.g. "-o" */
  alias?: string;
  /** `nrt train --resume` may be given it anew: changing it does not change what the run computes */
  resumable?: boolean;
  verl?: VerlFact;
}

/** One configuration field: declared once, with its type and check (zod), default, one-line doc and facts. */
export interface Field<T extends z.ZodType = z.ZodType> extends FieldFacts {
  schema: T;
  default: z.infer<T> | undefined;
  doc: string;
}

export function field<T extends z.ZodType, F extends FieldFacts = Record<never, never>>(
  schema: T,
  def: z.infer<T> | undefined,
  doc: string,
  facts?: F,
): Field<T> & F {
  return { schema, default: def, doc, ...facts } as Field<T> & F;
}

export type Fields = Record<string, Field>;

/** The names of the fields that have a fact, e.g. `keysWith(trainFields, (f) => f.resumable === true)`. */
export function keysWith(fields: Fields, has: (f: Field) => boolean): Set<string> {
  return new Set(Object.keys(fields).filter((k) => has(fields[k])));
}

/** The value type of a set of fields (a field without a default may be undefined). */
export type ValuesOf<F extends Fields> = { [K in keyof F]: z.infer<F[K]["schema"]> };

/** The type a field's schema takes ("number", "boolean", "string", "enum", …), under any optional wrapper. */
export function baseType(schema: z.ZodType): string {
  let def = (schema as unknown as { _zod: { def: { type: string; innerType?: z.ZodType } } })._zod.def;
  while ((def.type === "optional" || def.type === "default" || def.type === "nullable") && def.innerType)
    def = (def.innerType as unknown as { _zod: { def: { type: string; innerType?: z.ZodType } } })._zod.def;
  return def.type;
}

/** a number as written on a command line: decimal, with an optional fraction and exponent (no hex, no "") */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A flag's string value as its field's type: a decimal number, or true/false; anything else is left to the check. */
function fromFlag(v: unknown, schema: z.ZodType): unknown {
  if (typeof v !== "string") return v;
  const t = baseType(schema);
  if (t === "number") return DECIMAL.test(v.trim()) ? Number(v) : v;
  if (t === "boolean") return v === "true" ? true : v === "false" ? false : v;
  return v;
}

/**
 * Resolves a configuration: defaults, then a config file's values (snake_case keys), then CLI values
 * (camelCase keys, as commander gives them). Every value is checked, without coercion: a file's value must have
 * the field's type (`steps: [7]` or `seed: true` is refused), a flag's string must spell it (a decimal number,
 * `true`/`false`). An error names the key, the value and what was expected. Unknown file keys are refused.
 */
export function resolveFields<F extends Fields>(
  fields: F,
  file: Record<string, unknown> | undefined,
  cli: Record<string, unknown>,
  where: string,
): ValuesOf<F> {
  const out: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(fields)) out[k] = f.default;
  if (file) {
    for (const [key, value] of Object.entries(file)) {
      const k = camel(key);
      if (!(k in fields))
        throw new Error(`${where}: unknown key "${key}" (known: ${Object.keys(fields).map(snake).join(", ")})`);
      out[k] = value;
    }
  }
  for (const [k, value] of Object.entries(cli))
    if (k in fields && value !== undefined) out[k] = fromFlag(value, fields[k].schema);
  for (const [k, f] of Object.entries(fields)) {
    if (out[k] === undefined) continue;
    const r = f.schema.safeParse(out[k]);
    if (!r.success) {
      const flagNumber = typeof cli[k] === "string" && out[k] === cli[k] && baseType(f.schema) === "number";
      const msg = flagNumber ? "expected a decimal number" : r.error.issues.map((i) => i.message).join("; ");
      throw new Error(`${where}: ${snake(k)} = ${JSON.stringify(out[k])} is invalid: ${msg}`);
    }
    out[k] = r.data;
  }
  return out as ValuesOf<F>;
}
