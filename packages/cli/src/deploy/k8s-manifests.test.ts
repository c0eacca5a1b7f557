/**
 * The generated manifests against the Kubernetes OpenAPI schemas (kubernetes-models), and what they
 * must say: Indexed workers, the coordinator's address, the token from a Secret, checkpoints on a
 * claim with --resume, every setting a DDP_* variable that the container's command reads.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { Job } from 'kubernetes-models/batch/v1';
import { PersistentVolumeClaim, Service } from 'kubernetes-models/v1';
import { envOf, type FlagSpec } from '../args.js';
import { COORDINATOR_FLAGS } from '../commands/coordinator.js';
import { renderDeploy } from '../commands/deploy.js';
import { WORKER_FLAGS } from '../commands/worker.js';

// parseFlags reads DDP_* variables: the manifests must not depend on this shell's.
beforeAll(() => {
  for (const k of Object.keys(process.env)) if (k.startsWith('DDP_')) delete process.env[k];
});

type Obj = Record<string, any>;

/** The manifests as kubectl would read them: the YAML text, parsed. */
function manifests(args: string[]): Obj[] {
  const text = renderDeploy(['k8s', ...args]);
  if (text === undefined) throw new Error('no output');
  const docs = parseAllDocuments(text);
  for (const d of docs) expect(d.errors).toEqual([]);
  return docs.map((d) => d.toJS() as Obj);
}

const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'v1/Service': Service,
  'batch/v1/Job': Job,
};

function validate(o: Obj): void {
  const Model = MODELS[`${o.apiVersion}/${o.kind}`];
  if (!Model) throw new Error(`no schema for ${o.apiVersion} ${o.kind}`);
  new Model(o).validate();
}

const byKind = (docs: Obj[], kind: string, name: string) => {
  const found = docs.find((d) => d.kind === kind && d.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found;
};
const container = (job: Obj) => job.spec.template.spec.containers[0];
const envMap = (c: Obj): Record<string, any> => Object.fromEntries(c.env.map((e: Obj) => [e.name, e.value ?? e.valueFrom]));

const VARIANTS: Array<[string, string[]]> = [
  ['ring', ['--workers', '3', '--image', 'ddp:latest']],
  ['star', ['--workers', '2', '--image', 'ddp:latest', '--allreduce', 'star', '--reduction', 'exact']],
  ['ring with TLS', ['--workers', '4', '--image', 'r.example/ddp:1', '--tls-secret', 'ddp-tls']],
  ['star with TLS, a namespace and every option', [
    '--workers', '2', '--image', 'r.example/ddp@sha256:abc', '--allreduce', 'star', '--tls-secret', 'ddp-tls', '--namespace', 'ml', '--name', 'mnist',
    '--token-secret', 'mnist-secret', '--storage', '5Gi', '--storage-class', 'fast-ssd', '--worker-cpu', '1500m', '--worker-memory', '2Gi',
    '--epochs', '2', '--batch-size', '128', '--lr', '0.002', '--max-steps', '500', '--checkpoint-every', '100', '--backend', 'wasm', '--log-format', 'json',
    '--min-workers', '1', '--max-workers', '4', '--no-eval', '--compress', 'fp16',
  ]],
];

describe.each(VARIANTS)('ddp deploy k8s (%s)', (_label, args) => {
  const docs = manifests(args);
  const tls = args.includes('--tls-secret');
  const name = args.includes('--name') ? args[args.indexOf('--name') + 1]! : 'ddp';
  const workers = Number(args[args.indexOf('--workers') + 1]);
  const coordinator = byKind(docs, 'Job', `${name}-coordinator`);
  const workerJob = byKind(docs, 'Job', `${name}-worker`);
  const cEnv = envMap(container(coordinator));
  const wEnv = envMap(container(workerJob));

  it('every object is valid against the Kubernetes schemas', () => {
    expect(docs.map((d) => d.kind)).toEqual(['PersistentVolumeClaim', 'Service', 'Job', 'Service', 'Job']);
    for (const d of docs) validate(d);
  });

  it('workers: an Indexed Job of N pods on a headless Service\'s subdomain, dialing the coordinator\'s Service', () => {
    expect(workerJob.spec).toMatchObject({ completionMode: 'Indexed', completions: workers, parallelism: workers });
    const headless = byKind(docs, 'Service', `${name}-workers`);
    expect(headless.spec.clusterIP).toBe('None');
    expect(workerJob.spec.template.spec.subdomain).toBe(`${name}-workers`);
    expect(workerJob.spec.template.metadata.labels).toMatchObject(headless.spec.selector);
    const service = byKind(docs, 'Service', `${name}-coordinator`);
    expect(service.spec.ports).toEqual([{ name: 'ddp', port: 7070, targetPort: 'ddp' }]);
    expect(service.spec.publishNotReadyAddresses).toBe(true);
    expect(coordinator.spec.template.metadata.labels).toMatchObject(service.spec.selector);
    expect(wEnv.DDP_CONNECT).toBe(`${tls ? 'wss' : 'ws'}://${name}-coordinator:7070`);
    expect(workerJob.spec.template.spec.containers[0].args).toEqual(['worker']);
  });

  it('the coordinator binds 0.0.0.0, keeps its state on the claim and resumes from it; probes /readyz with the token and /healthz', () => {
    const c = container(coordinator);
    expect(c.args).toEqual(['coordinator', 'start']);
    expect(cEnv).toMatchObject({ DDP_WORKERS: String(workers), DDP_HOST: '0.0.0.0', DDP_RESUME: 'true', DDP_CHECKPOINT_DIR: '/ddp/checkpoints', DDP_OUT: '/ddp/model' });
    expect(cEnv.DDP_ALLREDUCE).toBe(args.includes('star') ? 'star' : 'ring');
    expect(c.volumeMounts).toContainEqual({ name: 'state', mountPath: '/ddp' });
    const claim = coordinator.spec.template.spec.volumes.find((v: Obj) => v.name === 'state').persistentVolumeClaim.claimName;
    expect(byKind(docs, 'PersistentVolumeClaim', claim).spec.resources.requests.storage).toBeDefined();
    expect(c.livenessProbe.httpGet).toMatchObject({ path: '/healthz', port: 'ddp', ...(tls ? { scheme: 'HTTPS' } : {}) });
    expect(c.readinessProbe.exec.command.slice(0, 2)).toEqual(['node', '-e']);
    expect(c.readinessProbe.exec.command[2]).toContain('/readyz');
    expect(coordinator.spec.template.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
  });

  it('the token comes from a Secret on both sides, and no literal one is written', () => {
    const secret = args.includes('--token-secret') ? args[args.indexOf('--token-secret') + 1] : `${name}-token`;
    for (const env of [cEnv, wEnv]) expect(env.DDP_TOKEN).toEqual({ secretKeyRef: { name: secret, key: 'token' } });
    const all = [...container(coordinator).env, ...container(workerJob).env];
    expect(all.filter((e: Obj) => /TOKEN/.test(e.name) && 'value' in e)).toEqual([]);
  });

  it('every DDP_* variable is one the container\'s command reads (and the pod-index helpers that build --peer-advertise)', () => {
    const known = (specs: readonly FlagSpec[]) => new Set([...specs.map(envOf), 'DDP_POD_INDEX', 'DDP_POD_NAMESPACE']);
    for (const [env, specs] of [[cEnv, COORDINATOR_FLAGS], [wEnv, WORKER_FLAGS]] as const) {
      for (const variable of Object.keys(env)) expect(known(specs).has(variable), variable).toBe(true);
    }
  });

  it(tls ? 'TLS: the Secret mounted on every pod, cert and key on both sides, the CA on workers' : 'no TLS: no certificate variables or volume', () => {
    for (const job of [coordinator, workerJob]) {
      const mounted = job.spec.template.spec.volumes.some((v: Obj) => v.secret?.secretName === 'ddp-tls');
      expect(mounted).toBe(tls);
    }
    if (tls) {
      expect(cEnv).toMatchObject({ DDP_TLS_CERT: '/etc/ddp/tls/node.crt', DDP_TLS_KEY: '/etc/ddp/tls/node.key' });
      expect(wEnv).toMatchObject({ DDP_TLS_CERT: '/etc/ddp/tls/node.crt', DDP_TLS_KEY: '/etc/ddp/tls/node.key', DDP_TLS_CA: '/etc/ddp/tls/ca.crt' });
      expect(container(workerJob).volumeMounts).toContainEqual({ name: 'tls', mountPath: '/etc/ddp/tls', readOnly: true });
      // Ring neighbours dial the pod's DNS name, which a wildcard certificate can hold (Node wants 2+ labels after '*').
      expect(wEnv.DDP_PEER_ADVERTISE).toMatch(/^[a-z0-9-]+-worker-\$\(DDP_POD_INDEX\)\.[a-z0-9-]+-workers\.\$\(DDP_POD_NAMESPACE\)\.svc$/);
    } else {
      for (const env of [cEnv, wEnv]) expect(Object.keys(env).filter((k) => k.startsWith('DDP_TLS'))).toEqual([]);
    }
  });
});

/** Every path to a value in `o` (keys and array indices). */
function paths(o: unknown, at: Array<string | number> = []): Array<Array<string | number>> {
  if (o === null || typeof o !== 'object') return [];
  const keys = Array.isArray(o) ? o.map((_, i) => i) : Object.keys(o);
  return keys.flatMap((k) => [[...at, k], ...paths((o as any)[k], [...at, k])]);
}

/**
 * The fields of `doc` that the schemas do not know. They accept unknown fields (as Kubernetes' OpenAPI
 * does; kubectl's strict validation would not), so each field is given a value of the wrong type,
 * which must make validation fail; where it does not, the schema has no such field.
 */
function unknownFields(doc: Obj): string[] {
  const unknown: string[] = [];
  for (const p of paths(doc)) {
    if (p[0] === 'apiVersion' || p[0] === 'kind') continue;
    const broken = structuredClone(doc);
    let parent: any = broken;
    for (const k of p.slice(0, -1)) parent = parent[k];
    const last = p[p.length - 1]!;
    parent[last] = Array.isArray(parent[last]) ? 'not-a-list' : [['wrong type']];
    try {
      validate(broken);
      unknown.push(p.join('.'));
    } catch {
      // the schema knows the field
    }
  }
  return unknown;
}

describe('every field written is one the schemas know', () => {
  it.each(VARIANTS)('%s', (_label, args) => {
    for (const doc of manifests(args)) expect(unknownFields(doc), `${doc.kind} ${doc.metadata.name}`).toEqual([]);
  });
});

describe('the schema check can fail', () => {
  const docs = manifests(['--workers', '2', '--image', 'ddp:latest']);
  const job = docs.find((d) => d.kind === 'Job' && d.spec.completionMode === 'Indexed')!;

  it('throws on a Job whose completions is not an integer, or whose container has no name', () => {
    validate(job);
    const badCount = structuredClone(job);
    badCount.spec.completions = 'two';
    expect(() => validate(badCount)).toThrow(/completions/);
    const noName = structuredClone(job);
    delete noName.spec.template.spec.containers[0].name;
    expect(() => validate(noName)).toThrow(/name/);
  });

  it('finds a misspelled field', () => {
    const typo = structuredClone(job);
    typo.spec.template.spec.subdomian = typo.spec.template.spec.subdomain;
    expect(unknownFields(typo)).toEqual(['spec.template.spec.subdomian']);
  });

  it('throws on a Service whose port is a string', () => {
    const service = structuredClone(docs.find((d) => d.kind === 'Service')!);
    validate(service);
    service.spec.ports[0].port = '7070';
    expect(() => validate(service)).toThrow(/port/);
  });
});

describe('passing the job\'s flags on', () => {
  it('writes only the flags given (ddp keeps its defaults for the others), in the coordinator; --backend in both', () => {
    const docs = manifests(['--workers', '2', '--image', 'x', '--epochs', '3', '--backend', 'wasm']);
    const c = envMap(container(docs.find((d) => d.metadata.name === 'ddp-coordinator' && d.kind === 'Job')!));
    const w = envMap(container(docs.find((d) => d.metadata.name === 'ddp-worker')!));
    expect(c).toMatchObject({ DDP_EPOCHS: '3', DDP_BACKEND: 'wasm', DDP_JOIN_TIMEOUT: '900' });
    expect(c.DDP_BATCH_SIZE).toBeUndefined();
    expect(w.DDP_BACKEND).toBe('wasm');
    expect(w.DDP_EPOCHS).toBeUndefined();
  });
});
