// Helpers for the job identity the welcome carries (declared in messages.ts as JOB_SPEC).
import type { JobIdentity } from './messages.js';

/** Whether two identities name the same job: same id and same fingerprint. */
export function sameJob(a: JobIdentity, b: JobIdentity): boolean {
  return a.id === b.id && a.fingerprint === b.fingerprint;
}

/** A job for people: its id and the start of its fingerprint. */
export function describeJob(j: JobIdentity): string {
  return `job ${j.id}, fingerprint ${j.fingerprint.length > 12 ? `${j.fingerprint.slice(0, 12)}…` : j.fingerprint}`;
}
