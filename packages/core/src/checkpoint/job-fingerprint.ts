import { createHash } from 'node:crypto';

/** Everything that changes the math of a run: a checkpoint is resumed only under the same fingerprint. */
export interface JobFingerprint {
  model: string; // 'seed-cnn'
  dataset: string; // 'mnist' | 'fashion-mnist'
  trainHash: string; // splitFingerprint(train), sha256
  trainCount: number;
  batchSize: number;
  lr: number;
  seed: number;
  reduction: string; // 'fast' | 'exact'
  compress: string; // 'none' | 'fp16'
}

type Field = keyof JobFingerprint;

/** Every field with its type: one list that validation, comparison and hashing share. */
export const FINGERPRINT_FIELDS: ReadonlyArray<readonly [Field, 'string' | 'number']> = [
  ['model', 'string'],
  ['dataset', 'string'],
  ['trainHash', 'string'],
  ['trainCount', 'number'],
  ['batchSize', 'number'],
  ['lr', 'number'],
  ['seed', 'number'],
  ['reduction', 'string'],
  ['compress', 'string'],
];

/** How a user names each setting: the CLI flag (trainHash and trainCount are one thing to them, the training data). */
const LABELS: ReadonlyArray<readonly [string, readonly Field[]]> = [
  ['model', ['model']],
  ['dataset', ['dataset']],
  ['training data', ['trainCount', 'trainHash']],
  ['batch-size', ['batchSize']],
  ['lr', ['lr']],
  ['seed', ['seed']],
  ['reduction', ['reduction']],
  ['compress', ['compress']],
];

function shown(f: JobFingerprint, fields: readonly Field[]): string {
  if (fields.length === 1) return String(f[fields[0]!]);
  return `${f.trainCount} samples (sha256 ${f.trainHash.slice(0, 12)})`;
}

/**
 * Human-readable differences, one per setting that differs, e.g. "batch-size: 64 in the checkpoint,
 * 128 now". Empty when equal.
 */
export function fingerprintDifferences(saved: JobFingerprint, now: JobFingerprint): string[] {
  const out: string[] = [];
  for (const [label, fields] of LABELS) {
    if (fields.some((k) => !Object.is(saved[k], now[k]))) {
      out.push(`${label}: ${shown(saved, fields)} in the checkpoint, ${shown(now, fields)} now`);
    }
  }
  return out;
}

/** A short stable hash (16 hex chars) of a fingerprint: sha256 of its canonical JSON (sorted keys, known fields only). */
export function fingerprintHash(f: JobFingerprint): string {
  const keys = FINGERPRINT_FIELDS.map(([k]) => k).sort();
  const canonical = `{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(f[k])}`).join(',')}}`;
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** Why `value` is not a JobFingerprint, or null when it is one. */
export function fingerprintProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return 'fingerprint is not an object';
  const v = value as Record<string, unknown>;
  for (const [k, type] of FINGERPRINT_FIELDS) {
    if (typeof v[k] !== type || (type === 'number' && !Number.isFinite(v[k]))) return `fingerprint.${k} is not a ${type}`;
  }
  return null;
}
