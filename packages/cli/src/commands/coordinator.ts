// Placeholder until the distributed coordinator lands (issue 4).
export async function runCoordinatorCommand(_argv: string[]): Promise<number> {
  throw new Error('ddp coordinator: not available in this build yet');
}
