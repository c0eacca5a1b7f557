/**
 * deploy/slurm/ddp.sbatch without Slurm: the script runs as sbatch would run it on the first node, with
 * the SLURM_* variables of a 3-node allocation, and stub `srun` and `scontrol` executables
 * (test/slurm-stub) that run each task here as a process with its SLURM_PROCID. A tiny job, its flags
 * given as DDP_* variables as the script documents.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './cli-helpers.js';
import { tmpDir } from './distributed-helpers.js';

const SBATCH = path.join(REPO_ROOT, 'deploy/slurm/ddp.sbatch');
const STUBS = path.join(REPO_ROOT, 'test/slurm-stub');

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Runs the script; `onStdout` sees its standard output as it grows, with the script's process. */
function sbatch(env: NodeJS.ProcessEnv, onStdout?: (soFar: string, child: ChildProcess) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [SBATCH], { cwd: env.SLURM_SUBMIT_DIR, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      onStdout?.(stdout, child);
    });
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGINT'); // the script forwards it to the coordinator
      reject(new Error(`ddp.sbatch timed out\n${stderr}`));
    }, 150_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The environment of the batch script in a 3-node allocation, ddp on PATH, without this shell's DDP_*. */
function allocation(dir: string, extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('DDP_') && !k.startsWith('SLURM_')) env[k] = v;
  return {
    ...env,
    PATH: `${STUBS}:${path.join(REPO_ROOT, 'node_modules/.bin')}:${process.env.PATH}`,
    SRUN_STUB_LOG: path.join(dir, 'srun.log'),
    SLURM_JOB_ID: '4242',
    SLURM_JOB_NAME: 'ddp',
    SLURM_JOB_NODELIST: '127.0.0.1,127.0.0.2,127.0.0.3',
    SLURM_JOB_NUM_NODES: '3',
    SLURM_NNODES: '3',
    SLURM_SUBMIT_DIR: dir,
    ...extra,
  };
}

describe('deploy/slurm/ddp.sbatch', () => {
  it('is valid bash (bash -n)', () => {
    const r = spawnSync('bash', ['-n', SBATCH], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });

  it('runs the coordinator on the first node and srun runs one worker on each other node; the job trains and ends with exit 0', async () => {
    const dir = tmpDir();
    const port = await freePort();
    const job = { DDP_PORT: String(port), DDP_MAX_STEPS: '20', DDP_LIMIT_TRAIN: '640', DDP_LIMIT_TEST: '100', DDP_BATCH_SIZE: '32', DDP_BACKEND: 'wasm', DDP_LOG_FORMAT: 'json' };
    const run = await sbatch(allocation(dir, job));
    expect(run.code, run.stderr).toBe(0);

    // The coordinator's events are the unlabelled JSON lines (srun --label prefixes the workers' output with their task).
    const events = run.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    expect(events.find((e) => e.event === 'start')).toMatchObject({ workers: 2, batchSize: 32, trainSamples: 640, backend: 'wasm' });
    expect(events.filter((e) => e.event === 'step')).toHaveLength(20);
    expect(events.find((e) => e.event === 'done')).toBeDefined();
    const hints = events.filter((e) => e.event === 'worker_joined').map((e) => e.rankHint);
    expect(hints).toHaveLength(2);
    expect(hints).toEqual(expect.arrayContaining([{ from: 'SLURM_PROCID', index: 0 }, { from: 'SLURM_PROCID', index: 1 }]));
    expect(run.stdout).toMatch(/^0: /m);
    expect(run.stdout).toMatch(/^1: /m);

    // One task per node on the two nodes after the first; the coordinator bound 0.0.0.0 on the first.
    const log = fs.readFileSync(path.join(dir, 'srun.log'), 'utf8');
    expect(log).toContain('srun --nodes=2 --ntasks=2 --ntasks-per-node=1 --relative=1');
    expect(log).toContain('task 0 on 127.0.0.2: ddp worker');
    expect(log).toContain('task 1 on 127.0.0.3: ddp worker');
    expect(run.stderr).toMatch(/coordinator on 127\.0\.0\.1:\d+ for 2 worker\(s\)/);
    expect(run.stderr).toMatch(/listening on ws:\/\/0\.0\.0\.0:\d+ .*\(token required\)/);

    // A token was made for the job, reached the workers, and was never printed.
    const token = /^token: (.*)$/m.exec(log)?.[1] ?? '';
    expect(token).toMatch(/^[0-9a-f]{32}$/);
    expect(run.stdout + run.stderr).not.toContain(token);

    // The model and checkpoints under the submit directory; --resume on a first run started at step 0.
    expect(run.stderr).toMatch(/--resume: no complete checkpoint in .*runs\/ddp-4242\/checkpoints: starting from step 0/);
    expect(fs.existsSync(path.join(dir, 'runs/ddp-4242/model.json'))).toBe(true);
  }, 180_000);

  it('SIGINT to the script (--signal=B:INT before the time limit) stops the job cleanly with a checkpoint; the next run resumes from it', async () => {
    const dir = tmpDir();
    const job = { DDP_PORT: String(await freePort()), DDP_MAX_STEPS: '5000', DDP_LIMIT_TRAIN: '640', DDP_LIMIT_TEST: '100', DDP_BATCH_SIZE: '32', DDP_BACKEND: 'wasm', DDP_LOG_FORMAT: 'json' };
    let sent = false;
    const first = await sbatch(allocation(dir, job), (out, child) => {
      // Only the batch shell gets the signal, as with --signal=B:INT; it passes it on to the coordinator.
      if (!sent && /^\{"event":"step","step":5,/m.test(out)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    expect(sent).toBe(true);
    expect(first.code, first.stderr).toBe(130);
    const checkpoints = fs.readdirSync(path.join(dir, 'runs/ddp-4242/checkpoints')).filter((n) => n.startsWith('step-'));
    expect(checkpoints.length).toBeGreaterThan(0);

    // The job requeued (same job id, same DDP_OUT): it resumes where the first stopped.
    const second = await sbatch(allocation(dir, { ...job, DDP_MAX_STEPS: '40' }));
    expect(second.code, second.stderr).toBe(0);
    const resumed = second.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).find((e) => e.event === 'resumed');
    expect(resumed?.step).toBeGreaterThanOrEqual(5);
  }, 180_000);

  it('refuses an allocation of one node: exit 2 and one line', async () => {
    const dir = tmpDir();
    const run = await sbatch(allocation(dir, { SLURM_JOB_NODELIST: '127.0.0.1', SLURM_JOB_NUM_NODES: '1', SLURM_NNODES: '1' }));
    expect(run.code).toBe(2);
    expect(run.stderr.trim().split('\n')).toEqual(['ddp.sbatch: needs at least 2 nodes (the coordinator\'s and a worker\'s), got 1: sbatch --nodes=N']);
  });
});
