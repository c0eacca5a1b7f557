// A checkpoint's model.json + weights.bin are an ordinary tfjs layers model (loadSeedCnnParams and
// `ddp evaluate --model` read them). tfjs writes weights.bin as the weights in model.weights order,
// each row-major float32, which is the order of the flat vector (SEED_CNN_PARAMS), so weights.bin is
// the params' raw bytes and model.json is the same text for every checkpoint: it is made once per
// process here instead of building a layers model per checkpoint.
import * as tf from '@tensorflow/tfjs-core';
import { buildSeedCnnLayersModel, setLayersModelParams } from '../model/keras-model.js';
import { SEED_CNN_PARAM_COUNT } from '../model/seed-cnn-layout.js';
import { WEIGHTS_BIN } from './layout.js';

let template: Promise<string> | null = null;

/**
 * The seed CNN's model.json text. The first call builds a layers model once, so it needs a tfjs
 * backend (any: it awaits tf.ready(), and the cpu one is enough).
 */
export function seedCnnModelJson(): Promise<string> {
  if (!template) {
    template = buildTemplate();
    template.catch(() => (template = null)); // a failure (no backend yet) is retried by the next call
  }
  return template;
}

async function buildTemplate(): Promise<string> {
  await tf.ready();
  const model = buildSeedCnnLayersModel();
  try {
    // Distinct values in every position: a tfjs whose weights.bin order differed from the flat
    // order would fail here, once, instead of writing checkpoints that load scrambled.
    const probe = new Float32Array(SEED_CNN_PARAM_COUNT).map((_, i) => i);
    setLayersModelParams(model, probe);
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save({
      save: async (a) => {
        artifacts = a;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      },
    });
    if (!artifacts?.weightData || !artifacts.weightSpecs) throw new Error('tfjs saved no weights for the seed CNN');
    const written = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
    if (!Buffer.from(written).equals(Buffer.from(probe.buffer))) {
      throw new Error("tfjs's weights.bin for the seed CNN is not the flat parameter vector's bytes: checkpoints cannot be written this way");
    }
    // The same fields as save.ts's fileSaveHandler writes.
    return JSON.stringify({
      modelTopology: artifacts.modelTopology,
      format: artifacts.format ?? 'layers-model',
      generatedBy: artifacts.generatedBy,
      convertedBy: 'ddp',
      weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs }],
    });
  } finally {
    model.dispose();
  }
}
