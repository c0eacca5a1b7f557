// Writes that survive a crash of the process or the machine: data reaches the disk (fsync) before a
// rename publishes it, and a folder is fsynced so that the entries made in it are on disk too.
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';

export interface WrittenFile {
  bytes: number;
  sha256: string;
}

/** Writes `chunks` into a new file, fsyncs it, and returns its size and sha256. */
export async function writeFileDurable(file: string, chunks: readonly Uint8Array[]): Promise<WrittenFile> {
  const hash = createHash('sha256');
  let bytes = 0;
  const fh = await fsp.open(file, 'wx');
  try {
    for (const c of chunks) {
      let done = 0;
      while (done < c.byteLength) done += (await fh.write(c, done, c.byteLength - done)).bytesWritten;
      hash.update(c);
      bytes += c.byteLength;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** fsyncs a folder, so that files created, renamed or removed in it stay so after a power loss. */
export async function fsyncDir(dir: string): Promise<void> {
  // Windows cannot open a folder for syncing; NTFS journals the metadata itself.
  if (process.platform === 'win32') return;
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The bytes of a float32 vector as they sit in memory, without a copy (little-endian: see assertLittleEndian). */
export function float32Bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The files are float32 little-endian, which is the memory order on every platform Node's tfjs runs on. */
export function assertLittleEndian(): void {
  if (new Uint8Array(new Float32Array([1]).buffer)[3] !== 0x3f) throw new Error('checkpoints need a little-endian machine');
}
