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

/** Rank r's shard of `batch` (views, not copies); a rank may get an empty shard if batch < workers. */
export function shardBatch(batch: Uint32Array, workers: number): Uint32Array[] {
  checkInt('shardBatch', 'workers', workers, 1);
  const shards: Uint32Array[] = [];
  let start = 0;
  for (const size of shardSizes(batch.length, workers)) {
    shards.push(batch.subarray(start, start + size));
    start += size;
  }
  return shards;
}
