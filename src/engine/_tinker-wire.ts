/**
 * The JSON shapes of the Tinker API that nrt sends and reads (tinker SDK `types/`, SkyRL `skyrl/tinker/api.py`; see
 * docs/scale.md): a Datum is `model_input` (the sequence without its last token) and `loss_fn_inputs`
 * {target_tokens, weights} (the sequence without its first token, and a float weight per target); cross_entropy's
 * loss is Σ −weights·log p(target_tokens), summed (not averaged).
 */

/** TensorData as JSON: a flat array with dtype and shape. */
export interface TensorJson {
  data: number[];
  dtype: "int64" | "float32";
  shape?: number[];
}

export interface DatumJson {
  model_input: { chunks: { type?: "encoded_text"; tokens: number[] }[] };
  loss_fn_inputs: Record<string, TensorJson>;
}

export interface SamplingParamsJson {
  max_tokens: number;
  seed: number;
  stop: number[];
  temperature: number;
  /** -1: no limit */
  top_k: number;
  top_p: number;
}

export interface SampledSequenceJson {
  tokens: number[];
  logprobs?: number[] | null;
  stop_reason: "stop" | "length";
}

/**
 * One sequence of a packed batch as a Datum, serialised by hand: typed arrays join straight into the text (no
 * intermediate number[]), and float32 weights print with enough digits to come back bit for bit. `weights` null
 * sends 1 per target (a plain NLL, for forward-only passes).
 */
export function datumText(tokens: Int32Array, at: number, n: number, weights: Float32Array | null): string {
  const m = n - 1;
  const inp = tokens.subarray(at, at + m).join(",");
  const tgt = tokens.subarray(at + 1, at + n).join(",");
  const w = weights ? weights.subarray(at + 1, at + n).join(",") : m > 0 ? `1${",1".repeat(m - 1)}` : "";
  return (
    `{"model_input":{"chunks":[{"type":"encoded_text","tokens":[${inp}]}]},"loss_fn_inputs":{` +
    `"target_tokens":{"data":[${tgt}],"dtype":"int64","shape":[${m}]},` +
    `"weights":{"data":[${w}],"dtype":"float32","shape":[${m}]}}}`
  );
}

/** The numbers of a TensorData (or of a bare array, as some servers send), checked to be numbers. */
export function tensorData(t: unknown, what: string): number[] {
  const data = Array.isArray(t) ? t : (t as { data?: unknown })?.data;
  if (!Array.isArray(data)) throw new Error(`${what} is not a TensorData ({data, dtype, shape})`);
  for (const x of data) if (typeof x !== "number") throw new Error(`${what} holds a non-number (${JSON.stringify(x)})`);
  return data as number[];
}
