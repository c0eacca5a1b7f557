// The names inside a checkpoint folder DIR: one complete checkpoint per step-NNNNNNNNN/, work in
// progress (and old folders on their way out) under .tmp-*, which readers never look at.
import { randomBytes } from 'node:crypto';
import { SEED_CNN_PARAM_COUNT } from '../model/seed-cnn-layout.js';

export const CHECKPOINT_FORMAT = 'ddp-checkpoint';
export const CHECKPOINT_VERSION = 1;

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';
export const OPTIMIZER_BIN = 'optimizer.bin';
export const STATE_JSON = 'state.json';
/** Written last: its presence (with every size and hash right) is what makes a checkpoint complete. */
export const MANIFEST_JSON = 'manifest.json';
/** The files the manifest must list, in the order they are written. */
export const DATA_FILES = [WEIGHTS_BIN, OPTIMIZER_BIN, MODEL_JSON, STATE_JSON] as const;

export const WEIGHTS_BYTES = SEED_CNN_PARAM_COUNT * 4;
export const OPTIMIZER_BYTES = 2 * SEED_CNN_PARAM_COUNT * 4;

/** step-000000123: zero-padded so that names sort like steps. */
export function stepFolderName(step: number): string {
  return `step-${String(step).padStart(9, '0')}`;
}

/** The step of a checkpoint folder name, or null for any other name (including non-canonical paddings). */
export function parseStepFolder(name: string): number | null {
  const m = /^step-(\d{9,})$/.exec(name);
  if (!m) return null;
  const step = Number(m[1]);
  return Number.isSafeInteger(step) && stepFolderName(step) === name ? step : null;
}

export const TMP_PREFIX = '.tmp-';

/** A private name for work in progress; the pid lets a later writer tell a dead process's leftovers from live work. */
export function tmpFolderName(purpose: string): string {
  return `${TMP_PREFIX}${purpose}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** The pid in a tmpFolderName, or null for a name this module did not make. */
export function tmpFolderPid(name: string): number | null {
  if (!name.startsWith(TMP_PREFIX)) return null;
  const m = /-(\d+)-[0-9a-f]{8}$/.exec(name);
  return m ? Number(m[1]) : null;
}
