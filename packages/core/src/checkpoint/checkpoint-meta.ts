import { fingerprintProblem, type JobFingerprint } from './job-fingerprint.js';

/** Where the run stands, beside the weights: enough for a resumed run to emit the same events and draw the same batches. */
export interface CheckpointMeta {
  jobId: string;
  fingerprint: JobFingerprint;
  /** == state.steps */
  steps: number;
  /** 0-based epoch the next step belongs to. */
  epoch: number;
  stepInEpoch: number;
  seed: number;
  /** Workers per range of steps, where the math depends on it (the fast reduction). */
  worldHistory: Array<{ fromStep: number; workers: number }>;
  /** The current epoch's training loss so far (sum over samples) and its sample count, so a resumed run's epoch event is the same. */
  epochLossSum: number;
  epochSamples: number;
}

const INTEGERS = ['steps', 'epoch', 'stepInEpoch', 'epochSamples'] as const;

/** Why `value` is not a CheckpointMeta, or null when it is one. Used on write (a caller's bug) and on read (a corrupt file). */
export function metaProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not an object';
  const m = value as Record<string, unknown>;
  if (typeof m.jobId !== 'string') return 'jobId is not a string';
  for (const k of INTEGERS) {
    if (!Number.isSafeInteger(m[k]) || (m[k] as number) < 0) return `${k} is not a non-negative integer`;
  }
  // JSON would turn NaN or Infinity into null: refuse them rather than write what cannot be read back.
  for (const k of ['seed', 'epochLossSum'] as const) {
    if (typeof m[k] !== 'number' || !Number.isFinite(m[k])) return `${k} is not a finite number`;
  }
  const fp = fingerprintProblem(m.fingerprint);
  if (fp) return fp;
  if (!Array.isArray(m.worldHistory)) return 'worldHistory is not an array';
  for (const [i, w] of m.worldHistory.entries()) {
    const e = w as Record<string, unknown> | null;
    if (typeof e !== 'object' || e === null || !Number.isSafeInteger(e.fromStep) || !Number.isSafeInteger(e.workers) || (e.workers as number) < 1) {
      return `worldHistory[${i}] is not {fromStep, workers}`;
    }
  }
  return null;
}
