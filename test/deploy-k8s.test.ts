/**
 * The containers of `ddp deploy k8s`, run as plain processes (no cluster here): the coordinator and
 * two workers with exactly the args and variables of the generated manifests, and Kubernetes' part
 * played by the test: the Secret's token, JOB_COMPLETION_INDEX for each worker of the Indexed Job, the
 * Service name resolved to 127.0.0.1, the claim a temporary folder. The readiness probe's own
 * command is run against the coordinator, as the kubelet would run it in the container.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { runCli } from './cli-helpers.js';
import { startDdp, tmpDir } from './distributed-helpers.js';

type Obj = Record<string, any>;
const TOKEN = 'e2e-deploy-k8s-token';

/** A container's variables as Kubernetes would set them, with the cluster's names mapped to this machine. */
function containerEnv(container: Obj, map: (name: string, value: string) => string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of container.env as Obj[]) {
    if (e.valueFrom) {
      const ref = e.valueFrom.secretKeyRef;
      if (ref.key === 'token') env[e.name] = TOKEN;
      else if (!ref.optional) throw new Error(`no value for the Secret key ${ref.key}`);
      continue;
    }
    env[e.name] = map(e.name, e.value);
  }
  return env;
}

/** Runs the readiness probe's exec command with the container's variables: its exit code. */
function probe(command: string[], env: Record<string, string>): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(command[0]!, command.slice(1), { env: { PATH: process.env.PATH, ...env }, stdio: 'ignore' });
    child.on('close', (code) => resolve(code));
  });
}

describe('ddp deploy k8s: the manifests\' containers, run here', () => {
  it('the coordinator and an Indexed Job\'s workers train with the generated variables; readiness and liveness answer as the probes expect', async () => {
    const gen = await runCli(['deploy', 'k8s', '--workers', '2', '--image', 'ddp:test', '--max-steps', '200', '--batch-size', '32', '--limit-train', '3200', '--limit-test', '200', '--backend', 'wasm', '--log-format', 'json']);
    expect(gen.code, gen.stderr).toBe(0);
    const docs = parseAllDocuments(gen.stdout).map((d) => d.toJS() as Obj);
    const job = (name: string) => docs.find((d) => d.kind === 'Job' && d.metadata.name === name)!.spec.template.spec.containers[0] as Obj;
    const coordinator = job('ddp-coordinator');
    const worker = job('ddp-worker');

    const claim = tmpDir(); // the PersistentVolumeClaim, mounted at /ddp
    const mount = coordinator.volumeMounts.find((m: Obj) => m.name === 'state').mountPath as string;
    const cEnv = containerEnv(coordinator, (name, v) => (name === 'DDP_PORT' ? '0' : v.startsWith(`${mount}/`) ? path.join(claim, v.slice(mount.length)) : v));
    expect(cEnv).toMatchObject({ DDP_HOST: '0.0.0.0', DDP_RESUME: 'true', DDP_WORKERS: '2' });
    const coord = startDdp(coordinator.args, cEnv);
    const port = Number((await coord.waitForStderr(/listening on ws:\/\/[^\s,]+:(\d+)/))[1]);
    // A first start with --resume and an empty claim starts at step 0.
    await coord.waitForStderr(/--resume: no complete checkpoint in .*: starting from step 0/);

    const probeEnv = { ...cEnv, DDP_PORT: String(port) };
    const readiness = coordinator.readinessProbe.exec.command as string[];
    expect(await probe(readiness, probeEnv)).toBe(1); // no worker yet: 503
    const healthz = await fetch(`http://127.0.0.1:${port}${coordinator.livenessProbe.httpGet.path}`);
    expect(healthz.status).toBe(200);

    const service = `ws://ddp-coordinator:${coordinator.ports[0].containerPort}`;
    const wEnv = containerEnv(worker, (name, v) => (name === 'DDP_CONNECT' ? v.replace(service, `ws://127.0.0.1:${port}`) : v));
    expect(wEnv.DDP_CONNECT).toBe(`ws://127.0.0.1:${port}`);
    const workers = [0, 1].map((i) => startDdp(worker.args, { ...wEnv, JOB_COMPLETION_INDEX: String(i) }));

    await coord.waitForEvent((e) => e.event === 'step', 120_000);
    expect(await probe(readiness, probeEnv)).toBe(0); // training: 200
    expect(await probe(readiness, { ...probeEnv, DDP_TOKEN: 'wrong' })).toBe(1); // 401

    expect((await coord.exit).code, coord.stderr()).toBe(0);
    for (const w of workers) expect((await w.exit).code, w.stderr()).toBe(0);
    const events = coord.events();
    expect(events.find((e) => e.event === 'start')).toMatchObject({ workers: 2, batchSize: 32, backend: 'wasm', allreduce: 'ring' });
    const hints = events.filter((e) => e.event === 'worker_joined').map((e) => e.rankHint);
    expect(hints).toEqual(expect.arrayContaining([{ from: 'JOB_COMPLETION_INDEX', index: 0 }, { from: 'JOB_COMPLETION_INDEX', index: 1 }]));
    // What must outlive the pod is on the claim.
    expect(fs.existsSync(path.join(claim, 'model/model.json'))).toBe(true);
    expect(fs.readdirSync(path.join(claim, 'checkpoints')).some((n) => n.startsWith('step-'))).toBe(true);
    expect(await probe(readiness, probeEnv)).toBe(1); // gone
  }, 240_000);

  it('bad flags are usage errors: exit 2 and one line', async () => {
    for (const [args, message] of [
      [['deploy', 'k8s', '--workers', '0', '--image', 'x'], 'ddp: --workers must be at least 1, got 0'],
      [['deploy', 'k8s', '--workers', '2'], 'ddp: --image IMAGE is required'],
    ] as const) {
      const run = await runCli([...args]);
      expect(run.code).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
      expect(run.stderr).toContain(message);
    }
  });
});
