// `node bench/write-model.js CONFIG_JSON DIR`: writes the model of one of run.js's descriptions (bench/_nrt.js:
// modelConfig) as a model directory with nrt's own writer (src/io saveModelDir: config.json, model.safetensors in
// F32), with the weights nrt's sampling benchmark runs (Model.init, seed SAMPLE_SEED, std 0.02) and nrt's character
// tokenizer.json (its 30 ids; the rest of the vocabulary is padding to the exporter). run.js exports it with
// `nrt export --format gguf --dtype f32` for llama.cpp.
import { saveModelDir } from "../dist/io/model-dir.js";
import { Model } from "../dist/model/model.js";
import { charTokenizerJson } from "../dist/tokenizer/char-tokenizer-json.js";
import { modelConfig, SAMPLE_SEED } from "./_nrt.js";

const [json, dir] = process.argv.slice(2);
const model = Model.init(modelConfig(JSON.parse(json)), SAMPLE_SEED);
saveModelDir(dir, model, { "tokenizer.json": `${JSON.stringify(charTokenizerJson())}\n` });
process.stdout.write(`${JSON.stringify({ dir, params: model.numParams })}\n`);
