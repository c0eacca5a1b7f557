/**
 * Configuration the way a container or a scheduler gives it: every flag from a DDP_* variable (the
 * command line still wins), and the scheduler's index of each worker (JOB_COMPLETION_INDEX,
 * SLURM_PROCID) reported in worker_joined. Real coordinator and worker processes.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from './cli-helpers.js';
import { startDdp, tmpDir } from './distributed-helpers.js';

const JOB_ENV = {
  DDP_TOKEN: 'e2e-container-config',
  DDP_WORKERS: '2',
  DDP_ALLREDUCE: 'star',
  DDP_MAX_STEPS: '4',
  DDP_BATCH_SIZE: '32',
  DDP_SEED: '7',
  DDP_LIMIT_TRAIN: '640',
  DDP_LIMIT_TEST: '100',
  DDP_BACKEND: 'wasm',
  DDP_LOG_FORMAT: 'json',
};

describe('DDP_* variables and scheduler rank hints', () => {
  it('a coordinator and two workers set up by variables alone train, and report each worker\'s scheduler index', async () => {
    const out = tmpDir();
    // --port 0 on the command line wins over DDP_PORT (a taken port would fail the run).
    const coord = startDdp(['coordinator', 'start', '--port', '0'], { ...JOB_ENV, DDP_PORT: '1', DDP_OUT: out });
    const url = (await coord.waitForStderr(/listening on (ws:\/\/[^\s,]+)/))[1];
    const workerEnv = { DDP_TOKEN: JOB_ENV.DDP_TOKEN, DDP_CONNECT: url, DDP_BACKEND: 'wasm' };
    const w1 = startDdp(['worker'], { ...workerEnv, JOB_COMPLETION_INDEX: '1' });
    const w2 = startDdp(['worker'], { ...workerEnv, SLURM_PROCID: '0' });
    expect((await coord.exit).code).toBe(0);
    expect((await w1.exit).code).toBe(0);
    expect((await w2.exit).code).toBe(0);
    const events = coord.events();
    expect(events.find((e) => e.event === 'start')).toMatchObject({ workers: 2, batchSize: 32, seed: 7, trainSamples: 640, totalSteps: 4, allreduce: 'star', backend: 'wasm' });
    expect(events.filter((e) => e.event === 'step')).toHaveLength(4);
    const hints = events.filter((e) => e.event === 'worker_joined').map((e) => e.rankHint);
    expect(hints).toHaveLength(2);
    expect(hints).toEqual(expect.arrayContaining([{ from: 'JOB_COMPLETION_INDEX', index: 1 }, { from: 'SLURM_PROCID', index: 0 }]));
  }, 120_000);

  it('a bad value in a variable is a usage error naming the variable and its flag', async () => {
    const run = await runCli(['coordinator', 'start', '--workers', '1'], { env: { DDP_BATCH_SIZE: 'lots' } });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("DDP_BATCH_SIZE (--batch-size) expects an integer, got 'lots'");
  });

  it('--help names the variable of every flag', async () => {
    const worker = await runCli(['worker', '--help']);
    for (const v of ['DDP_CONNECT', 'DDP_TOKEN', 'DDP_RECONNECT_TIMEOUT', 'DDP_PEER_HOST']) expect(worker.stdout).toContain(`[env ${v}]`);
    const coord = await runCli(['coordinator', 'start', '--help']);
    for (const v of ['DDP_WORKERS', 'DDP_HOST', 'DDP_CHECKPOINT_DIR', 'DDP_ALLREDUCE']) expect(coord.stdout).toContain(`[env ${v}]`);
  });
});
