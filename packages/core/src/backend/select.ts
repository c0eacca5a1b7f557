import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { registerDdpWasmKernels } from './kernels/index.js';

export const BACKEND_CHOICES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];
export type BackendName = Exclude<BackendChoice, 'auto'>;

export interface BackendInfo {
  /** The tfjs backend in use. */
  name: BackendName;
  /** Why this one: printed at start so that a user always knows what computes their gradients. */
  reason: string;
}

export function isBackendChoice(value: string): value is BackendChoice {
  return (BACKEND_CHOICES as readonly string[]).includes(value);
}

/** Loads @tensorflow/tfjs-node if it is installed and works; returns why not otherwise. */
async function tryLoadTfjsNode(): Promise<string | null> {
  // A variable specifier keeps TypeScript from requiring the optional package at build time.
  const specifier = '@tensorflow/tfjs-node';
  try {
    await import(specifier);
    return null;
  } catch (err) {
    const msg = err instanceof Error ? err.message.split('\n')[0] : String(err);
    return msg.includes('Cannot find') ? '@tensorflow/tfjs-node is not installed' : `@tensorflow/tfjs-node failed to load (${msg})`;
  }
}

let current: BackendInfo | null = null;

/**
 * Chooses and initialises the compute backend: `auto` tries tensorflow (tfjs-node), then wasm
 * (with ddp's training kernels), then cpu. An explicit choice that cannot be had is an error.
 */
export async function initBackend(choice: BackendChoice = 'auto'): Promise<BackendInfo> {
  if (!isBackendChoice(choice)) {
    throw new RangeError(`unknown backend '${choice}' (expected one of ${BACKEND_CHOICES.join(', ')})`);
  }
  if (current && (choice === 'auto' || choice === current.name)) return current;
  let reason = 'requested';
  let name: BackendName;
  if (choice === 'tensorflow' || choice === 'auto') {
    const why = await tryLoadTfjsNode();
    if (why === null && (await tf.setBackend('tensorflow'))) {
      name = 'tensorflow';
      reason = choice === 'auto' ? 'auto: @tensorflow/tfjs-node is installed' : 'requested';
    } else if (choice === 'tensorflow') {
      throw new Error(`backend 'tensorflow' is not available: ${why ?? 'tfjs-node did not register it'}`);
    } else {
      name = 'wasm';
      reason = `auto: ${why ?? 'tfjs-node did not register'}; using wasm with ddp training kernels`;
    }
  } else {
    name = choice;
  }
  if (name === 'wasm') {
    registerDdpWasmKernels();
    if (!(await tf.setBackend('wasm'))) {
      if (choice === 'wasm') throw new Error("backend 'wasm' failed to initialise");
      name = 'cpu';
      reason = 'auto: wasm failed to initialise; cpu is correct but slow';
    }
  }
  if (name === 'cpu' && !(await tf.setBackend('cpu'))) throw new Error("backend 'cpu' failed to initialise");
  await tf.ready();
  current = { name: tf.getBackend() as BackendName, reason };
  return current;
}
