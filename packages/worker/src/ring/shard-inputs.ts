/**
 * A shard's model inputs (pixels scaled to [0, 1], int32 labels), and the one prepared ahead: a ring
 * member knows its next shard from the plan, and gathers it while its allreduce waits on the
 * network, so that the next step starts with its inputs ready.
 */
import { gatherShard, type ShardInputs, type Split } from '@ddp/core';

const sameIndices = (a: Uint32Array, b: Uint32Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** Holds at most one shard prepared ahead. */
export class ShardPrefetch {
  private ready: ShardInputs | null = null;
  /** Shards served from the prepared one, and gathered on demand. */
  hits = 0;
  misses = 0;

  constructor(private readonly train: Split) {}

  /** Gathers `indices` now (a copy: the caller's array may be a view that changes). */
  prepare(indices: Uint32Array): void {
    this.ready = gatherShard(this.train, indices.slice());
  }

  /** The inputs of `indices`: the prepared ones when they match, else gathered now. */
  take(indices: Uint32Array): ShardInputs {
    const r = this.ready;
    this.ready = null;
    if (r && sameIndices(r.indices, indices)) {
      this.hits++;
      return r;
    }
    this.misses++;
    return gatherShard(this.train, indices);
  }

  clear(): void {
    this.ready = null;
  }
}
