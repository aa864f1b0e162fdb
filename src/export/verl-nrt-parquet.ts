/**
 * verl-nrt rows → one parquet file (hyparquet-writer), with the column types `datasets` gives the recipe's own
 * files: strings as UTF8, chat turns as `list<struct<role: string, content: string>>` (the standard three-level
 * LIST: `<name> (LIST) / repeated list / element`, as pyarrow writes it), `reward_model` and `extra_info` as
 * structs, integers as INT64. Every field is OPTIONAL (nullable), as pyarrow writes them.
 */
import { parquetWriteBuffer } from "hyparquet-writer";
import type { VerlNrtRow } from "./verl-nrt-rows.js";

type Schema = NonNullable<Parameters<typeof parquetWriteBuffer>[0]["schema"]>;
type Element = Schema[number];

const str = (name: string): Element => ({
  name,
  type: "BYTE_ARRAY",
  converted_type: "UTF8",
  repetition_type: "OPTIONAL",
});
const int64 = (name: string): Element => ({ name, type: "INT64", repetition_type: "OPTIONAL" });
const struct = (name: string, children: Element[][]): Element[] => [
  { name, repetition_type: "OPTIONAL", num_children: children.length },
  ...children.flat(),
];
/** list<struct<role, content>> */
const turns = (name: string): Element[] => [
  { name, repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
  { name: "list", repetition_type: "REPEATED", num_children: 1 },
  ...struct("element", [[str("role")], [str("content")]]),
];

/** The top-level columns in file order, each as its schema elements (depth-first). */
const COLUMNS: [keyof VerlNrtRow, Element[]][] = [
  ["data_source", [str("data_source")]],
  ["prompt", turns("prompt")],
  ["gen_prompt", turns("gen_prompt")],
  ["think_prefix", [str("think_prefix")]],
  ["response_prefix", [str("response_prefix")]],
  ["reference_content", [str("reference_content")]],
  ["reward_model", struct("reward_model", [[str("style")], [str("ground_truth")]])],
  ["ability", [str("ability")]],
  [
    "extra_info",
    struct("extra_info", [[int64("index")], [str("id")], [str("source")], [int64("line")], turns("original_messages")]),
  ],
];

/** The column names of the parquet files, in order. */
export const VERL_NRT_COLUMNS: readonly string[] = COLUMNS.map(([name]) => name);

/** The parquet bytes of `rows`. */
export function verlNrtParquet(rows: readonly VerlNrtRow[]): Uint8Array {
  const schema: Schema = [{ name: "schema", num_children: COLUMNS.length }, ...COLUMNS.flatMap(([, els]) => els)];
  const columnData = COLUMNS.map(([name]) => ({
    name,
    data: rows.map((r) =>
      name === "extra_info"
        ? { ...r.extra_info, index: BigInt(r.extra_info.index), line: BigInt(r.extra_info.line) }
        : r[name],
    ),
  }));
  const buf = parquetWriteBuffer({ columnData, schema, createdBy: "nrt export --format verl-nrt (hyparquet-writer)" });
  return new Uint8Array(buf);
}
