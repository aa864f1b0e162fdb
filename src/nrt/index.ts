/** The pure math of NRT (SPEC §3–5): reward tables, method presets, group scoring and per-token loss weights. */
export type { Advantage, AdvantageName } from "./advantages.js";
export { advantages, MIN_GROUP_STD } from "./advantages.js";
export type { Aggregated, Aggregation, AggregationName } from "./aggregations.js";
export { aggregations, emptyTraceReward, MAX_LOG_RATIO } from "./aggregations.js";
export type { Baseline, BaselineName } from "./baselines.js";
export { baselines } from "./baselines.js";
export type { GroupInput, GroupScores } from "./group.js";
export { scoreGroup } from "./group.js";
export type { MethodName, MethodPreset, NrtObjective, ObjectiveChoice, ObjectiveInput } from "./methods.js";
export { defaultObjective, methods, resolveMethod, resolveObjective } from "./methods.js";
export type { TokenWeight, TokenWeightName } from "./token-weights.js";
export { tokenWeights } from "./token-weights.js";
export type { SequenceLayout } from "./weights.js";
export {
  answerStartIndex,
  clippedTraceWeight,
  RATIO_HIGH,
  RATIO_LOW,
  sequenceLength,
  sftSequenceWeights,
  traceSequenceWeights,
} from "./weights.js";
