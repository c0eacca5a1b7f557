import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { buildSeedCnnLayersModel, getLayersModelParams, setLayersModelParams } from './keras-model.js';

export const MODEL_JSON = 'model.json';

/** A model folder that is missing or unreadable: the user's to fix, so the CLI prints one line. */
export class ModelFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelFileError';
  }
}
export const WEIGHTS_BIN = 'weights.bin';

/** An IOHandler that writes the standard tfjs layout: DIR/model.json + DIR/weights.bin. */
export function fileSaveHandler(dir: string): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      fs.mkdirSync(dir, { recursive: true });
      const data = artifacts.weightData;
      const bytes = data === undefined ? new Uint8Array(0) : new Uint8Array(tf.io.CompositeArrayBuffer.join(data));
      // Write to temporary names, then rename, so that a crash never leaves a half-written model.
      const bin = path.join(dir, WEIGHTS_BIN);
      fs.writeFileSync(`${bin}.tmp`, bytes);
      const json = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: 'ddp',
        weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
      };
      const jsonPath = path.join(dir, MODEL_JSON);
      fs.writeFileSync(`${jsonPath}.tmp`, JSON.stringify(json));
      fs.renameSync(`${bin}.tmp`, bin);
      fs.renameSync(`${jsonPath}.tmp`, jsonPath);
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: bytes.byteLength } };
    },
  };
}

/** An IOHandler that reads DIR/model.json and the weight files its manifest names. */
export function fileLoadHandler(dir: string): tf.io.IOHandler {
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      const jsonPath = path.join(dir, MODEL_JSON);
      if (!fs.existsSync(jsonPath)) throw new ModelFileError(`no ${MODEL_JSON} in ${dir}`);
      let json: { modelTopology?: object; weightsManifest?: tf.io.WeightsManifestConfig; format?: string };
      try {
        json = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
      } catch (err) {
        throw new ModelFileError(`${jsonPath}: not valid JSON (${(err as Error).message})`);
      }
      if (!json.modelTopology || !Array.isArray(json.weightsManifest)) {
        throw new ModelFileError(`${jsonPath}: not a tfjs layers model (needs modelTopology and weightsManifest)`);
      }
      const specs: tf.io.WeightsManifestEntry[] = [];
      const buffers: Buffer[] = [];
      for (const group of json.weightsManifest) {
        specs.push(...group.weights);
        for (const p of group.paths) {
          const file = path.join(dir, p);
          if (!fs.existsSync(file)) throw new ModelFileError(`${jsonPath} names ${p}, which is missing`);
          buffers.push(fs.readFileSync(file));
        }
      }
      const all = Buffer.concat(buffers);
      const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
      return { modelTopology: json.modelTopology, weightSpecs: specs, weightData, format: json.format };
    },
  };
}

/** Saves flat seed-CNN parameters as a tfjs layers model in DIR. */
export async function saveSeedCnn(params: Float32Array, dir: string): Promise<void> {
  const model = buildSeedCnnLayersModel();
  try {
    setLayersModelParams(model, params);
    await model.save(fileSaveHandler(dir));
  } finally {
    model.dispose();
  }
}

/** Loads DIR (as saved by saveSeedCnn, or any tfjs model of the same architecture) into a flat vector. */
export async function loadSeedCnnParams(dir: string): Promise<Float32Array> {
  const model = await tfl.loadLayersModel(fileLoadHandler(dir));
  try {
    return getLayersModelParams(model);
  } finally {
    model.dispose();
  }
}
