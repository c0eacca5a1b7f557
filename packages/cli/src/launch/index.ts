// Placeholder until the local multi-process launcher lands (issue 4).
export async function runLocalCluster(_opts: { workers: number; passThroughArgs: string[]; logFormat: 'text' | 'json' }): Promise<number> {
  throw new Error('ddp train --workers N >= 1 is not available in this build yet; use --workers 0');
}
