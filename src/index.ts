// nrt's public API. Everything a library user needs is exported here by name; other modules are internal.

export { resolveFields } from "./config/schema.js";
export type { TrainConfig } from "./config/train-config.js";
export { ADVANTAGES, AGGREGATIONS, BASELINES, METHODS, TOKEN_WEIGHTS, trainFields } from "./config/train-config.js";
export type { Example } from "./data/format.js";
export { plainExamples } from "./data/format.js";
export type { QaRecord } from "./data/qa.js";
export { readQaFile } from "./data/qa.js";
export type { Engine, EngineState, Sampled, SampleParams, Scored, SeqBatch, StepResult } from "./engine/engine.js";
export { EngineError } from "./engine/engine.js";
export { NrtError } from "./errors.js";
export type { EvalOptions, EvalResult, EvalSample } from "./eval/evaluate.js";
export { evaluate } from "./eval/evaluate.js";
export { formatEvalTable, formatHardTokens } from "./eval/format.js";
export type { EvalMetrics, EvalReport, HardTokenBin } from "./eval/metrics.js";
export { modelFromGguf } from "./export/gguf-llama.js";
export { readGguf } from "./export/gguf-read.js";
export { exportGguf } from "./export/to-gguf.js";
export { importLlama2c } from "./import/llama2c.js";
export { parseHfConfig, toHfConfig } from "./io/hf-config.js";
export type { LoadedModel } from "./io/load.js";
export { loadModel } from "./io/load.js";
export { loadModelDir, resolveModelDir, saveModelDir } from "./io/model-dir.js";
export { readSafetensors, writeSafetensors } from "./io/safetensors.js";
export type { Architecture, Family, ModelConfig, RopeScaling } from "./model/config.js";
export { FAMILIES, llamaConfig } from "./model/config.js";
export { Model } from "./model/model.js";
export type {
  AdamWSettings,
  AdamWState,
  ForwardResult,
  GenerateOptions,
  GenerateResult,
  ParamInfo,
} from "./model/native.js";
export { setThreads } from "./model/native.js";
export type { GroupScores, MethodName, NrtObjective } from "./nrt/index.js";
export {
  advantages,
  aggregations,
  baselines,
  methods,
  resolveObjective,
  scoreGroup,
  tokenWeights,
} from "./nrt/index.js";
export { buildReport, readRun, writeReport } from "./report/report.js";
export type { RolloutOptions, Trace } from "./rollout/rollout.js";
export { rollout } from "./rollout/rollout.js";
export { charTokenizerJson } from "./tokenizer/char-tokenizer-json.js";
export { Tokenizer } from "./tokenizer/tokenizer.js";
export { gradBatch, parseGradBatch } from "./train/grad.js";
export type { Metrics } from "./train/metrics.js";
export { defaultPretrainConfig, pretrain } from "./train/pretrain.js";
export type { TrainHooks, TrainResult } from "./train/trainer.js";
export { objectiveOf, train, trainAsync } from "./train/trainer.js";
export { generate as generateWorld, toJsonl } from "./world/chain.js";
export { parseQuestion, solve } from "./world/question.js";
