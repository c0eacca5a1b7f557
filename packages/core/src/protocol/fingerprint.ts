// The coordinator and its workers must sum gradients over the same samples: the welcome carries a
// fingerprint of the coordinator's training split, and a worker whose local copy differs refuses to
// train (DDP_DATASET) instead of silently computing on other images.
import { createHash } from 'node:crypto';
import type { Split } from '../data/datasets.js';

/** sha256 (hex) of a split's shape, labels and pixels. */
export function splitFingerprint(split: Split): string {
  const h = createHash('sha256');
  h.update(`${split.count}x${split.rows}x${split.cols};`);
  h.update(split.labels);
  h.update(split.images);
  return h.digest('hex');
}
