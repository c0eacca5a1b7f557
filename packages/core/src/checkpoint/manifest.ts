// manifest.json: the format version and, for every other file, its size and sha256. Written last,
// it is the mark of a complete checkpoint, and what a reader checks every byte against.
import { CHECKPOINT_FORMAT, CHECKPOINT_VERSION, DATA_FILES } from './layout.js';
import type { WrittenFile } from './durable-io.js';

export interface Manifest {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  step: number;
  files: Record<string, WrittenFile>;
}

export function makeManifest(step: number, files: Record<string, WrittenFile>): Manifest {
  return { format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, step, files };
}

/** Parses manifest.json's text; returns why it is not a manifest of this format as a string. */
export function parseManifest(text: string): Manifest | string {
  let m: Manifest;
  try {
    m = JSON.parse(text);
  } catch {
    return 'manifest.json: not valid JSON';
  }
  if (typeof m !== 'object' || m === null || m.format !== CHECKPOINT_FORMAT) return `manifest.json: not a ${CHECKPOINT_FORMAT} manifest`;
  if (m.version !== CHECKPOINT_VERSION) return `manifest.json: format version ${m.version}, this ddp reads ${CHECKPOINT_VERSION}`;
  if (typeof m.files !== 'object' || m.files === null) return 'manifest.json: no file list';
  for (const name of DATA_FILES) {
    const f = m.files[name];
    if (typeof f !== 'object' || f === null) return `manifest.json does not list ${name}`;
    if (!Number.isSafeInteger(f.bytes) || f.bytes < 0 || typeof f.sha256 !== 'string') return `manifest.json: bad entry for ${name}`;
  }
  return m;
}
