// Splitting a global batch across workers: contiguous slices in rank order, sizes within one
// of each other, so that the workers' gradient sums add up to the whole batch's.

function checkInt(where: string, name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`${where}: ${name} must be an integer >= ${min}, got ${String(value)}`);
  }
}

/** Shard sizes for `workers` ranks; the first `total % workers` ranks get one extra sample. */
export function shardSizes(total: number, workers: number): number[] {
  checkInt('shardSizes', 'total', total, 0);
  checkInt('shardSizes', 'workers', workers, 1);
  const base = Math.floor(total / workers);
  const extra = total % workers;
  const sizes = new Array<number>(workers);
  for (let r = 0; r < workers; r++) sizes[r] = base + (r < extra ? 1 : 0);
  return sizes;
}

/**
 * Shard sizes in samples when a batch of `total` is cut into units of `unit` consecutive samples
 * (positions [0, unit), [unit, 2 unit), ...; the last unit may be short) and the units are shared
 * as shardSizes shares samples: every shard is a whole number of units, so it starts at a multiple
 * of `unit` in the batch. With unit 1 this is shardSizes. The exact reduction uses unit
 * MICRO_SHARD, so that every rank computes the same micro-shards whatever the split.
 */
export function shardLengths(total: number, workers: number, unit = 1): number[] {
  checkInt('shardLengths', 'total', total, 0);
  checkInt('shardLengths', 'unit', unit, 1);
  let start = 0;
  return shardSizes(Math.ceil(total / unit), workers).map((units) => {
    const end = Math.min(total, start + units * unit);
    const size = end - start;
    start = end;
    return size;
  });
}

/**
 * Rank r's shard of `batch` (views, not copies), a whole number of `unit`-sample units each
 * (shardLengths); a rank may get an empty shard if the batch has fewer units than workers.
 */
export function shardBatch(batch: Uint32Array, workers: number, unit = 1): Uint32Array[] {
  checkInt('shardBatch', 'workers', workers, 1);
  const shards: Uint32Array[] = [];
  let start = 0;
  for (const size of shardLengths(batch.length, workers, unit)) {
    shards.push(batch.subarray(start, start + size));
    start += size;
  }
  return shards;
}
