// Placeholder until the distributed worker lands (issue 4).
export async function runWorkerCommand(_argv: string[]): Promise<number> {
  throw new Error('ddp worker: not available in this build yet');
}
