// Checkpoints written off the training loop's path: schedule() queues and returns at once, the
// writes run one after the other (so steps land in order and rotation never races itself).
import type { CheckpointMeta } from './checkpoint-meta.js';
import type { TrainingState } from './training-state.js';
import { assertCheckpointArgs, writeCheckpoint, type CheckpointWritten } from './write-checkpoint.js';

export interface CheckpointWriterOptions {
  /** How many complete checkpoints to keep. */
  keep: number;
  onWritten?: (w: CheckpointWritten) => void;
  /** A failed write (a CheckpointWriteError naming the path). Later writes still run. Default: a process warning. */
  onError?: (err: Error) => void;
}

export class CheckpointWriter {
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;

  constructor(
    readonly dir: string,
    private readonly opts: CheckpointWriterOptions,
  ) {
    if (!Number.isSafeInteger(opts.keep) || opts.keep < 1) throw new RangeError(`CheckpointWriter: keep must be a positive integer, got ${opts.keep}`);
  }

  /** Writes scheduled or in progress. */
  get pending(): number {
    return this.queued;
  }

  /**
   * Queues a write of `state` (the caller hands over copies it will not touch again) and returns at
   * once. Throws RangeError at once for a state or meta that is not a checkpoint.
   */
  schedule(state: TrainingState, meta: CheckpointMeta): void {
    assertCheckpointArgs(state, meta, this.opts.keep);
    this.queued++;
    this.chain = this.chain.then(async () => {
      try {
        const written = await writeCheckpoint(this.dir, state, meta, { keep: this.opts.keep });
        this.opts.onWritten?.(written);
      } catch (err) {
        this.report(err instanceof Error ? err : new Error(String(err)));
      } finally {
        this.queued--;
      }
    });
  }

  /** Resolves when every write scheduled so far is done (written or reported). Never rejects. */
  flush(): Promise<void> {
    return this.chain;
  }

  private report(err: Error): void {
    try {
      if (this.opts.onError) this.opts.onError(err);
      else process.emitWarning(err.message, 'CheckpointWarning');
    } catch {
      // An onError that throws must not break the chain of later writes.
    }
  }
}
