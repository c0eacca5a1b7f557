import { SEED_CNN_PARAM_COUNT } from '../model/seed-cnn-layout.js';

/** What a resumed run needs to continue the same math: the weights and Adam's state after `steps` steps. */
export interface TrainingState {
  /** Optimizer steps applied (Adam's t). */
  steps: number;
  /** The flat seed-CNN weights (SEED_CNN_PARAM_COUNT). */
  params: Float32Array;
  /** Adam first moment, same length. */
  adamM: Float32Array;
  /** Adam second moment, same length. */
  adamV: Float32Array;
}

/** Throws RangeError when the state is not one of the seed CNN (a caller's bug, caught before any file is touched). */
export function assertTrainingState(state: TrainingState): void {
  if (!Number.isSafeInteger(state.steps) || state.steps < 0) {
    throw new RangeError(`checkpoint: steps must be a non-negative integer, got ${state.steps}`);
  }
  for (const key of ['params', 'adamM', 'adamV'] as const) {
    const a = state[key];
    if (!(a instanceof Float32Array) || a.length !== SEED_CNN_PARAM_COUNT) {
      throw new RangeError(`checkpoint: ${key} must be a Float32Array of ${SEED_CNN_PARAM_COUNT} values, got ${a instanceof Float32Array ? a.length : typeof a}`);
    }
  }
}
