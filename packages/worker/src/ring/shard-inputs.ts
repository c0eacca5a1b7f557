/**
 * A shard's model inputs (pixels scaled to [0, 1], int32 labels), and the one prepared ahead: the
 * coordinator names the shard a worker will most likely get next, and the worker gathers it while
 * its allreduce waits on the network, so that the next step starts with its inputs ready.
 */
import { gatherImages, gatherLabels, type Split } from '@ddp/core';

export interface ShardInputs {
  indices: Uint32Array;
  images: Float32Array;
  labels: Int32Array;
}

/** Gathers from the local split, or from pixels served with the work (--serve-data). */
export function gatherShard(indices: Uint32Array, train: Split | null, served: { images: Uint8Array; labels: Uint8Array; rows: number; cols: number } | null): ShardInputs {
  if (served) {
    const split: Split = { images: served.images, labels: served.labels, count: indices.length, rows: served.rows, cols: served.cols };
    const local = Uint32Array.from({ length: indices.length }, (_, i) => i);
    return { indices, images: gatherImages(split, local), labels: gatherLabels(split, local) };
  }
  if (!train) throw new Error('work without pixels, but this worker has no local data set');
  return { indices, images: gatherImages(train, indices), labels: gatherLabels(train, indices) };
}

export const sameIndices = (a: Uint32Array, b: Uint32Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** Holds at most one shard prepared ahead. */
export class ShardPrefetch {
  private ready: ShardInputs | null = null;
  /** Shards served from the prepared one, and gathered on demand. */
  hits = 0;
  misses = 0;

  constructor(private readonly train: Split | null) {}

  /** Gathers `indices` now (a copy: the message's array may be reused). Needs the local split. */
  prepare(indices: Uint32Array): void {
    if (!this.train) return;
    this.ready = gatherShard(indices.slice(), this.train, null);
  }

  /** The prepared inputs when they are for exactly these indices, else null; either way the slot is emptied. */
  take(indices: Uint32Array): ShardInputs | null {
    const r = this.ready;
    this.ready = null;
    if (r && sameIndices(r.indices, indices)) {
      this.hits++;
      return r;
    }
    this.misses++;
    return null;
  }

  clear(): void {
    this.ready = null;
  }
}
