/**
 * `--engine openai-split`: sampling (and, with --sampler-scores, scoring) on a vLLM or SGLang server; training on a
 * learner engine (native, in process, or a Tinker server). After each update the sampler is brought up to date
 * before it samples again: the learner's weights are written, atomically, as a model directory at `dir` (the path
 * the server loads from, on a file system both see) and the server is asked to reload it.
 *
 * Start-up: the server is checked (health, model), then one sequence is scored on the server and by the learner.
 * If they differ by more than the tolerance (a resumed run, or a server started on other weights), nrt writes its
 * weights and reloads; if they still differ, the server is not loading what nrt writes, and the run stops there.
 */
import { resolve } from "node:path";
import { NrtError } from "../errors.js";
import { saveModelDir } from "../io/model-dir.js";
import type { Model } from "../model/model.js";
import type { AdamWSettings } from "../model/native.js";
import type { Engine, EngineState, Sampled, SampleParams, Scored, SeqBatch, StepResult } from "./engine.js";
import { EngineError, probeGap } from "./engine.js";
import type { SamplerClient } from "./sampler-client.js";

export interface SplitOptions {
  /** the model directory nrt writes and the server loads */
  dir: string;
  /** files written beside the weights (tokenizer), so that `dir` stays a whole model directory */
  files: Readonly<Record<string, string | Uint8Array>>;
  /** score on the server rather than the learner */
  scoreOnSampler: boolean;
  /** a sequence scored on both sides at start-up */
  probe?: readonly number[];
  /** largest mean |Δ log p| (nats) on the probe */
  probeTolerance?: number;
}

/** Opens the split engine over an opened learner: the server checked and holding the learner's weights. */
export async function openSplit(
  learner: Engine,
  model: Model,
  sampler: SamplerClient,
  o: SplitOptions,
): Promise<SplitEngine> {
  const e = new SplitEngine(learner, model, sampler, o);
  try {
    await e.start();
  } catch (err) {
    await learner.close();
    throw err;
  }
  return e;
}

export class SplitEngine implements Engine {
  readonly name = "openai-split";
  readonly where: string;
  /** the learner's update count whose weights the server holds; -1: unknown */
  private synced = -1;
  /** reloads asked of the server so far */
  reloads = 0;

  constructor(
    readonly learner: Engine,
    readonly model: Model,
    readonly sampler: SamplerClient,
    readonly o: SplitOptions,
  ) {
    this.where = `${sampler.kind} at ${sampler.where} (sampling), ${learner.name} ${learner.where} (training)`;
  }

  get updates(): number {
    return this.learner.updates;
  }

  private fail(message: string): EngineError {
    return new EngineError(`openai-split (${this.sampler.kind})`, this.sampler.where, message);
  }

  async start(): Promise<void> {
    const { modelPath } = await this.sampler.start();
    if (modelPath && this.sampler.kind === "vllm" && resolve(modelPath) !== resolve(this.o.dir))
      process.stderr.write(
        `warning: vLLM at ${this.sampler.where} loaded its model from ${modelPath}, and nrt writes the weights to ` +
          `${this.o.dir}; vLLM's reload_weights reads the path it was started on (fine if both name the same ` +
          "directory on different machines)\n",
      );
    if (!this.o.probe) {
      await this.syncSampler();
      return;
    }
    if (this.learner.updates === 0 && (await this.measureProbe()) <= this.tolerance) {
      this.synced = 0; // the server already holds the starting weights
      return;
    }
    await this.syncSampler();
    const gap = await this.measureProbe();
    if (!(gap <= this.tolerance))
      throw this.fail(
        `after writing the weights to ${this.o.dir} and asking the server to reload them, its log-probabilities ` +
          `still differ from the learner's by ${gap.toPrecision(3)} nats per token (tolerance ${this.tolerance}): ` +
          "the server does not load what nrt writes (start it on that directory; see docs/scale.md)",
      );
  }

  private get tolerance(): number {
    return this.o.probeTolerance ?? 0.1;
  }

  /** mean |Δ log p| between the server and the learner on the probe sequence */
  private async measureProbe(): Promise<number> {
    const seq = this.o.probe as readonly number[];
    const batch = { tokens: Int32Array.from(seq), lens: Int32Array.of(seq.length) };
    const there = await this.sampler.score(batch);
    const here = (await this.learner.score(batch)).logprobs;
    return probeGap(there, here, seq.length);
  }

  async syncSampler(): Promise<number> {
    const v = this.learner.updates;
    if (this.synced === v) return v;
    await this.learner.pull();
    try {
      saveModelDir(this.o.dir, this.model, this.o.files);
    } catch (e) {
      throw new NrtError(`writing the sampler's weights: ${(e as Error).message}`, this.o.dir);
    }
    await this.sampler.reload(resolve(this.o.dir));
    this.reloads++;
    this.synced = v;
    return v;
  }

  async sample(prompts: readonly (readonly number[])[], p: SampleParams): Promise<Sampled[][]> {
    if (this.synced !== this.learner.updates) await this.syncSampler();
    return this.sampler.sample(prompts, p);
  }

  async score(batch: SeqBatch): Promise<Scored> {
    if (!this.o.scoreOnSampler) return this.learner.score(batch);
    if (this.synced !== this.learner.updates) await this.syncSampler();
    return { logprobs: await this.sampler.score(batch), entropy: null };
  }

  async step(batch: SeqBatch, weights: Float32Array, o: AdamWSettings): Promise<StepResult> {
    return this.learner.step(batch, weights, o);
  }

  async pull(): Promise<void> {
    await this.learner.pull();
  }

  async saveState(name: string): Promise<EngineState> {
    return this.learner.saveState(name);
  }

  async close(): Promise<void> {
    await this.learner.close();
  }
}
