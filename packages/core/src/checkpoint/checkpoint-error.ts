/** A checkpoint folder that is incomplete or corrupt: skipped on resume, named in the warning. */
export class CheckpointError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`checkpoint ${path}: ${reason}`);
    this.name = 'CheckpointError';
  }
}

/** A checkpoint that could not be written (disk full, no permission, DIR is a file...); nothing partial is left under its name. */
export class CheckpointWriteError extends Error {
  constructor(
    readonly path: string,
    cause: unknown,
  ) {
    super(`could not write checkpoint ${path}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'CheckpointWriteError';
  }
}
