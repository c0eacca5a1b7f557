/**
 * Which job a coordinator serves, as the welcome tells every worker (core's JobIdentity): an id and a
 * fingerprint. A worker that lost its coordinator rejoins whatever listens on the same address only
 * if both match its first welcome's, so that a restarted coordinator continues the job and another
 * job on that port is never joined by accident.
 *
 * The fingerprint is one function, jobFingerprintOf, so that what defines "the same job" can grow
 * (it is meant to be replaced by a richer one) without touching its callers.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { DataSpec, JobIdentity, WireConfig } from '@ddp/core';

/** A fresh job id: 16 random hex digits. */
export function newJobId(): string {
  return randomBytes(8).toString('hex');
}

/** What the fingerprint covers: the data set and its content, the hyper-parameters and the wire settings. */
export interface JobFingerprintInputs {
  dataset: string;
  /** The training split's fingerprint (DataSpec.fingerprint). */
  trainFingerprint: DataSpec['fingerprint'];
  batchSize: number;
  lr: number;
  seed: number;
  config: WireConfig;
}

/** JSON with the keys of every object sorted, so that the same inputs always give the same text. */
function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
    .join(',')}}`;
}

/** sha256 (hex, 64 digits) of the job's defining inputs. */
export function jobFingerprintOf(inputs: JobFingerprintInputs): string {
  const { dataset, trainFingerprint, batchSize, lr, seed, config } = inputs;
  return createHash('sha256').update(canonicalJson({ dataset, trainFingerprint, batchSize, lr, seed, config })).digest('hex');
}

/** The identity of a job with no id or fingerprint given: a random id, fingerprint 'unspecified'. */
export function anonymousJob(): JobIdentity {
  return { id: newJobId(), fingerprint: 'unspecified' };
}
