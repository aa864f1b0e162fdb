/**
 * `nrt export --format gguf`: a model (or run) directory → one GGUF v3 file that llama.cpp loads, for every family
 * (gguf-llama.ts names them as llama.cpp does), with the chat template as `tokenizer.chat_template`.
 */
import { basename, resolve } from "node:path";
import { NrtError } from "../errors.js";
import { loadMerged } from "../io/load.js";
import { checkTokenizerJson } from "../tokenizer/tokenizer-json.js";
import { GGUF_DEFAULT_ALIGNMENT, type GgufValue, GgufWriter, gv } from "./gguf.js";
import { archMetadata, archTensors, GGUF_ARCH } from "./gguf-llama.js";
import { ggufVocab } from "./gguf-vocab.js";

export type GgufDtype = "f32" | "f16";

export interface GgufExportOptions {
  /** matrices in F32 (default) or F16; norm weights stay F32 */
  dtype?: GgufDtype;
  /** general.name (default: the name of the directory given) */
  name?: string;
}

export interface GgufExportResult {
  path: string;
  bytes: number;
  tensors: number;
  tokenizerModel: "llama" | "gpt2";
  warnings: string[];
}

/** llama.cpp's general.file_type: 0 all F32, 1 mostly F16 */
const FILE_TYPE: Record<GgufDtype, number> = { f32: 0, f16: 1 };

/** Writes `modelPath` (model directory, or run directory → final/ or latest checkpoint) as GGUF at `outPath`. */
export function exportGguf(modelPath: string, outPath: string, opts: GgufExportOptions = {}): GgufExportResult {
  const dtype = opts.dtype ?? "f32";
  if (!Object.hasOwn(FILE_TYPE, dtype))
    throw new NrtError(`must be f32 or f16, got ${JSON.stringify(dtype)}`, "--dtype");
  const { dir, model, tokenizerJson, chatTemplate } = loadMerged(modelPath);
  const c = model.config;
  const arch = GGUF_ARCH[c.modelType];
  if (c.slidingWindow !== 0 && c.slidingWindow < c.maxPositionEmbeddings && c.maxWindowLayers < c.numLayers) {
    throw new NrtError(
      `sliding_window ${c.slidingWindow} < max_position_embeddings: llama.cpp's ${arch} architecture attends to every earlier token`,
      dir,
    );
  }
  if (c.ropeScaling?.type === "llama3" && arch !== "llama") {
    throw new NrtError(`llama.cpp's ${arch} architecture has no llama3 RoPE scaling (rope_freqs)`, dir);
  }
  const vocab = ggufVocab(
    checkTokenizerJson(tokenizerJson, dir),
    c.vocabSize,
    {
      bos: c.bosTokenId,
      eos: c.eosTokenId,
    },
    `${dir}/tokenizer.json`,
  );
  const kv: [string, GgufValue][] = [
    ["general.architecture", gv.str(arch)],
    ["general.name", gv.str(opts.name ?? basename(resolve(modelPath)))],
    ["general.file_type", gv.u32(FILE_TYPE[dtype])],
    ["general.alignment", gv.u32(GGUF_DEFAULT_ALIGNMENT)],
    ...archMetadata(c),
    ...vocab.kv,
  ];
  if (chatTemplate !== null) kv.push(["tokenizer.chat_template", gv.str(chatTemplate.source)]);
  if (c.answerStartTokenId !== null) kv.push(["nrt.answer_start_token_id", gv.u32(c.answerStartTokenId)]);
  const tensors = archTensors(model, dtype);

  let w: GgufWriter;
  try {
    w = new GgufWriter(outPath);
  } catch (e) {
    throw new NrtError(`cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, outPath);
  }
  try {
    w.writeHeader(tensors.length, kv.length);
    for (const [k, v] of kv) w.writeKv(k, v);
    for (const t of tensors) w.writeTensorInfo(t.name, t.shape, t.type);
    for (const t of tensors) w.writeTensorData(t.name, t.bytes());
    const bytes = w.close();
    return { path: outPath, bytes, tensors: tensors.length, tokenizerModel: vocab.model, warnings: vocab.warnings };
  } catch (e) {
    w.abort();
    throw e;
  }
}
