/** Files of a run directory (SPEC §6) besides checkpoints/ and final/. Not config.json: that name marks a model directory. */
export const RUN_CONFIG = "run_config.json";
export const METRICS_FILE = "metrics.jsonl";
export const ALARMS_FILE = "alarms.jsonl";
/** a few sampled traces with their rewards every `samples_every` steps: {step, question, trace, reference, reward} */
export const SAMPLES_FILE = "samples.jsonl";
