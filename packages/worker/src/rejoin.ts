/**
 * Workers outlive their coordinator. When a welcomed session ends because the coordinator went away
 * (SessionEnd.lost: the socket closed without done, an error or a close status of the coordinator's,
 * or it fell silent for --heartbeat-timeout), the worker reconnects to the same address for up to
 * --reconnect-timeout and says hello again; the new welcome must be for the same job (id and
 * fingerprint of the first welcome), which WorkerSession checks (else DDP_JOB_CHANGED, exit 3).
 *
 * Not retried: a normal end (done), a refusal (exit 3: token, version, job full, another job), a
 * failure of this worker's own or an error the coordinator sent (it meant it), and anything before the
 * first welcome (--connect-timeout covers the first connection). RejoinPolicy decides, with no socket
 * and no timer of its own; run-worker.ts does the connecting.
 */
import type { JobIdentity, Split, DataSpec, WelcomeMessage } from '@ddp/core';
import { WORKER_EXIT, type SessionEnd } from './session/worker-session.js';

/** After a session ended: stop with this end, or reconnect within `leftMs`. */
export type NextStep =
  | { action: 'stop'; end: SessionEnd }
  /** `fresh`: the coordinator was just lost (say so), rather than a reconnection attempt that failed before its welcome. */
  | { action: 'reconnect'; leftMs: number; fresh: boolean };

export class RejoinPolicy {
  /** The job of the first welcome: every later welcome must be for it. */
  private firstJob: JobIdentity | undefined;
  private rejoined = 0;
  /** While reconnecting: when to give up (a performance.now() time). */
  private deadline: number | null = null;

  /**
   * @param timeoutMs how long to try to rejoin after losing the coordinator (0: never)
   * @param now the clock (tests inject one)
   */
  constructor(
    readonly timeoutMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(timeoutMs >= 0)) throw new RangeError(`RejoinPolicy: timeoutMs must be >= 0, got ${timeoutMs}`);
  }

  /** The job this worker belongs to (undefined before the first welcome). */
  get job(): JobIdentity | undefined {
    return this.firstJob;
  }

  /** How many times this worker rejoined a coordinator after losing one. */
  get rejoins(): number {
    return this.rejoined;
  }

  /** While reconnecting, the time left (ms); null when connected. */
  leftMs(): number | null {
    return this.deadline === null ? null : Math.max(0, this.deadline - this.now());
  }

  /** A session accepted its welcome (WorkerSession checked the job already). */
  welcomed(w: WelcomeMessage): void {
    if (this.firstJob === undefined) this.firstJob = { id: w.job.id, fingerprint: w.job.fingerprint };
    else this.rejoined++;
    this.deadline = null;
  }

  /** What to do once a session ended with `end`. */
  next(end: SessionEnd): NextStep {
    if (!end.lost || this.firstJob === undefined || this.timeoutMs <= 0) return { action: 'stop', end };
    const fresh = this.deadline === null;
    if (fresh) this.deadline = this.now() + this.timeoutMs;
    const leftMs = this.deadline! - this.now();
    if (leftMs <= 0) return { action: 'stop', end: this.gaveUp(end.message) };
    return { action: 'reconnect', leftMs, fresh };
  }

  /** The end when no coordinator took this worker back in time. */
  gaveUp(lastError: string): SessionEnd {
    return {
      exitCode: WORKER_EXIT.FAILED,
      message: `lost the coordinator and no coordinator of job ${this.firstJob?.id ?? '?'} took this worker back within ${secondsText(this.timeoutMs)} (--reconnect-timeout); last error: ${lastError}`,
    };
  }
}

const secondsText = (ms: number) => `${Number((ms / 1000).toFixed(1))} s`;

type LoadSplits = (spec: DataSpec, dataDir: string | undefined) => { train: Split; test: Split | null };

/**
 * Keeps the splits loaded for one welcome and hands them out again for the next welcome that names the
 * same data (a rejoin), instead of reading the data set again.
 */
export function keepSplits(load: LoadSplits): LoadSplits {
  let kept: { key: string; splits: ReturnType<LoadSplits> } | null = null;
  return (spec, dataDir) => {
    const key = JSON.stringify([spec.dataset, dataDir ?? null, spec.limitTrain ?? null, spec.limitTest ?? null]);
    if (kept?.key !== key) kept = { key, splits: load(spec, dataDir) };
    return kept.splits;
  };
}
