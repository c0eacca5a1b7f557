import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { IMAGE_SIZE, NUM_CLASSES, SEED_CNN_PARAMS, SEED_CNN_PARAM_COUNT } from './seed-cnn-layout.js';

/**
 * The seed CNN as a tfjs-layers model, layer names matching SEED_CNN_PARAMS, so that the saved
 * model.json is an ordinary Keras-style model that `tf.loadLayersModel` reads back.
 */
export function buildSeedCnnLayersModel(): tfl.Sequential {
  const model = tfl.sequential({ name: 'seed_cnn' });
  model.add(tfl.layers.conv2d({ name: 'conv2d', filters: 32, kernelSize: 3, activation: 'relu', inputShape: [IMAGE_SIZE, IMAGE_SIZE, 1] }));
  model.add(tfl.layers.maxPooling2d({ name: 'max_pooling2d', poolSize: 2 }));
  model.add(tfl.layers.conv2d({ name: 'conv2d_1', filters: 64, kernelSize: 3, activation: 'relu' }));
  model.add(tfl.layers.maxPooling2d({ name: 'max_pooling2d_1', poolSize: 2 }));
  model.add(tfl.layers.conv2d({ name: 'conv2d_2', filters: 64, kernelSize: 3, activation: 'relu' }));
  model.add(tfl.layers.flatten({ name: 'flatten' }));
  model.add(tfl.layers.dense({ name: 'dense', units: 64, activation: 'relu' }));
  model.add(tfl.layers.dense({ name: 'dense_1', units: NUM_CLASSES, activation: 'softmax' }));
  return model;
}

/** Copies the flat vector into the layers model's weights (same order). */
export function setLayersModelParams(model: tfl.LayersModel, params: Float32Array): void {
  if (params.length !== SEED_CNN_PARAM_COUNT) {
    throw new RangeError(`seed CNN expects ${SEED_CNN_PARAM_COUNT} parameters, got ${params.length}`);
  }
  const tensors = SEED_CNN_PARAMS.map((s) => tf.tensor(params.subarray(s.offset, s.offset + s.size), s.shape, 'float32'));
  model.setWeights(tensors);
  tensors.forEach((t) => t.dispose());
}

/** Reads the layers model's weights into one flat vector, checking every shape against the layout. */
export function getLayersModelParams(model: tfl.LayersModel): Float32Array {
  const weights = model.getWeights();
  if (weights.length !== SEED_CNN_PARAMS.length) {
    throw new Error(`model has ${weights.length} weight tensors, the seed CNN has ${SEED_CNN_PARAMS.length}`);
  }
  const params = new Float32Array(SEED_CNN_PARAM_COUNT);
  SEED_CNN_PARAMS.forEach((s, i) => {
    const w = weights[i];
    if (w.shape.join(',') !== s.shape.join(',')) {
      throw new Error(`weight ${i} (${s.name}) has shape [${w.shape}], expected [${s.shape}]`);
    }
    params.set(w.dataSync() as Float32Array, s.offset);
  });
  return params;
}
