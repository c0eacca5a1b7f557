// state.json: the CheckpointMeta with the format version, as readable JSON.
import { metaProblem, type CheckpointMeta } from './checkpoint-meta.js';
import { CHECKPOINT_FORMAT, CHECKPOINT_VERSION } from './layout.js';

export function encodeStateJson(meta: CheckpointMeta): string {
  return `${JSON.stringify({ format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, meta }, null, 1)}\n`;
}

/** The meta in state.json's text, or why there is none as a string. */
export function decodeStateJson(text: string): CheckpointMeta | string {
  let doc: { format?: unknown; version?: unknown; meta?: unknown };
  try {
    doc = JSON.parse(text);
  } catch {
    return 'state.json: not valid JSON';
  }
  if (typeof doc !== 'object' || doc === null || doc.format !== CHECKPOINT_FORMAT) return `state.json: not a ${CHECKPOINT_FORMAT} state`;
  if (doc.version !== CHECKPOINT_VERSION) return `state.json: format version ${String(doc.version)}, this ddp reads ${CHECKPOINT_VERSION}`;
  const problem = metaProblem(doc.meta);
  return problem ? `state.json: ${problem}` : (doc.meta as CheckpointMeta);
}
