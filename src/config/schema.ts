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

/**
 * Resolves a configuration: defaults, then a config file's values (snake_case keys), then CLI values
 * (camelCase keys, as commander gives them). Every value is checked; an error names the key, the value and
 * what was expected. Unknown file keys are refused.
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
  for (const [k, value] of Object.entries(cli)) if (k in fields && value !== undefined) out[k] = value;
  for (const [k, f] of Object.entries(fields)) {
    if (out[k] === undefined) continue;
    const r = f.schema.safeParse(out[k]);
    if (!r.success) {
      const msg = r.error.issues.map((i) => i.message).join("; ");
      throw new Error(`${where}: ${snake(k)} = ${JSON.stringify(out[k])} is invalid: ${msg}`);
    }
    out[k] = r.data;
  }
  return out as ValuesOf<F>;
}
