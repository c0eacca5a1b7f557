// Reading checkpoints back: every byte is checked against the manifest and every field validated
// before anything is returned, so a resumed run never starts from a partial or corrupt state.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import type { CheckpointMeta } from './checkpoint-meta.js';
import { CheckpointError } from './checkpoint-error.js';
import { DATA_FILES, MANIFEST_JSON, MODEL_JSON, OPTIMIZER_BIN, OPTIMIZER_BYTES, STATE_JSON, WEIGHTS_BIN, WEIGHTS_BYTES, parseStepFolder } from './layout.js';
import { parseManifest } from './manifest.js';
import { decodeStateJson } from './state-json.js';
import type { TrainingState } from './training-state.js';

export interface LoadedCheckpoint {
  path: string;
  state: TrainingState;
  meta: CheckpointMeta;
}

/** Larger than any file of a seed-CNN checkpoint: a bigger one is not read into memory. */
const MAX_FILE_BYTES = 64 * 1024 * 1024;

/** Reads and verifies one checkpoint folder; throws CheckpointError (path and reason) when it is incomplete or corrupt. */
export async function readCheckpoint(checkpointPath: string): Promise<LoadedCheckpoint> {
  const fail = (reason: string): never => {
    throw new CheckpointError(checkpointPath, reason);
  };
  const step = parseStepFolder(path.basename(checkpointPath));
  if (step === null) fail('not a checkpoint folder name (expected step-NNNNNNNNN)');
  const manifestText = await readText(checkpointPath, MANIFEST_JSON, fail);
  if (manifestText === null) return fail(`missing ${MANIFEST_JSON} (the write did not finish)`);
  const manifest = parseManifest(manifestText);
  if (typeof manifest === 'string') return fail(manifest);
  const data: Record<string, Buffer> = {};
  for (const name of DATA_FILES) {
    const want = manifest.files[name]!;
    const file = path.join(checkpointPath, name);
    const st = await fsp.stat(file).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? null : fail(`${name}: ${err.message}`)));
    if (st === null) return fail(`${name}: missing`);
    if (st.size !== want.bytes) fail(`${name}: ${st.size} bytes, expected ${want.bytes}`);
    if (st.size > MAX_FILE_BYTES) fail(`${name}: ${st.size} bytes, too large for a checkpoint file`);
    const bytes = await fsp.readFile(file).catch((err: Error) => fail(`${name}: ${err.message}`));
    if (bytes.length !== want.bytes) fail(`${name}: ${bytes.length} bytes, expected ${want.bytes}`);
    if (createHash('sha256').update(bytes).digest('hex') !== want.sha256) fail(`${name}: sha256 mismatch`);
    data[name] = bytes;
  }
  // The hashes prove the files are the ones written; these checks prove they are a seed-CNN checkpoint of this step.
  if (manifest.step !== step) fail(`${MANIFEST_JSON}: step ${manifest.step}, but the folder is step ${step}`);
  if (data[WEIGHTS_BIN]!.length !== WEIGHTS_BYTES) fail(`${WEIGHTS_BIN}: ${data[WEIGHTS_BIN]!.length} bytes, expected ${WEIGHTS_BYTES}`);
  if (data[OPTIMIZER_BIN]!.length !== OPTIMIZER_BYTES) fail(`${OPTIMIZER_BIN}: ${data[OPTIMIZER_BIN]!.length} bytes, expected ${OPTIMIZER_BYTES}`);
  try {
    JSON.parse(data[MODEL_JSON]!.toString('utf8'));
  } catch {
    fail(`${MODEL_JSON}: not valid JSON`);
  }
  const meta = decodeStateJson(data[STATE_JSON]!.toString('utf8'));
  if (typeof meta === 'string') return fail(meta);
  if (meta.steps !== step) fail(`${STATE_JSON}: steps ${meta.steps}, but the folder is step ${step}`);
  const opt = data[OPTIMIZER_BIN]!;
  const state: TrainingState = {
    steps: meta.steps,
    params: float32Copy(data[WEIGHTS_BIN]!, 0, WEIGHTS_BYTES),
    adamM: float32Copy(opt, 0, WEIGHTS_BYTES),
    adamV: float32Copy(opt, WEIGHTS_BYTES, WEIGHTS_BYTES),
  };
  return { path: checkpointPath, state, meta };
}

/**
 * The newest complete checkpoint in DIR, or null (DIR missing, or no complete one). Each incomplete
 * or corrupt one met on the way goes to onSkip(path, reason) and is skipped; .tmp-* folders are
 * work in progress and not looked at. Throws only when DIR itself cannot be listed (not a folder,
 * no permission).
 */
export async function readLatestCheckpoint(dir: string, opts: { onSkip?: (path: string, reason: string) => void } = {}): Promise<LoadedCheckpoint | null> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot list the checkpoint folder ${dir}: ${(err as Error).message}`);
  }
  const steps = names
    .map((name) => ({ name, step: parseStepFolder(name) }))
    .filter((s) => s.step !== null)
    .sort((a, b) => b.step! - a.step!);
  for (const { name } of steps) {
    const folder = path.join(dir, name);
    try {
      return await readCheckpoint(folder);
    } catch (err) {
      opts.onSkip?.(folder, err instanceof CheckpointError ? err.reason : String((err as Error)?.message ?? err));
    }
  }
  return null;
}

/** A file's text, or null when it does not exist. */
async function readText(folder: string, name: string, fail: (reason: string) => never): Promise<string | null> {
  try {
    return await fsp.readFile(path.join(folder, name), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ENOTDIR') return fail('not a folder');
    return fail(`${name}: ${(err as Error).message}`);
  }
}

/** A Float32Array of its own (file buffers may start at offsets a Float32Array view cannot). */
function float32Copy(buf: Buffer, offset: number, bytes: number): Float32Array {
  const out = new Float32Array(bytes / 4);
  new Uint8Array(out.buffer).set(buf.subarray(offset, offset + bytes));
  return out;
}
