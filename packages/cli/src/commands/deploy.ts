import { wireConflict } from '@ddp/core';
import { envOf, formatFlags, num, parseFlags, str, strOf, UsageError, type FlagSpec, type FlagValues } from '../args.js';
import { k8sComments, k8sManifests, type K8sOptions } from '../deploy/k8s-manifests.js';
import { yamlDocuments } from '../deploy/yaml.js';
import { wireConfigFromFlags } from '../training-flags.js';
import { COORDINATOR_FLAGS } from './coordinator.js';
import { WORKER_FLAGS } from './worker.js';

/** The job's settings, passed on to `ddp coordinator start` (its own help texts; only those given are written). */
const JOB_FLAG_NAMES = [
  'compress', 'reduction', 'hash-every', 'epochs', 'batch-size', 'lr', 'seed', 'max-steps', 'dataset', 'limit-train', 'limit-test', 'no-eval',
  'checkpoint-every', 'keep-checkpoints', 'min-workers', 'max-workers', 'worker-timeout', 'join-timeout', 'straggler-factor', 'stall-warning',
];
/** Defaults that differ from ddp's in a cluster: worker pods may wait minutes to be scheduled and pull the image. */
const K8S_DEFAULTS: Record<string, number> = { 'join-timeout': 900 };
/** Passed on to both the coordinator and the workers. */
const SHARED_FLAG_NAMES = ['backend', 'log-format'];

const specOf = (table: readonly FlagSpec[], name: string): FlagSpec => {
  const spec = table.find((s) => s.name === name);
  if (!spec) throw new Error(`no flag --${name} in the table`);
  return spec;
};
/** A flag of another command, here without its default (unset: the container's ddp uses its own). */
const passedOn = (table: readonly FlagSpec[], name: string): FlagSpec => {
  const { default: dflt, ...spec } = specOf(table, name);
  return { ...spec, help: dflt === undefined ? spec.help : `${spec.help} (ddp's default: ${dflt})` };
};

/** A flag of `ddp coordinator start` with its cluster default (K8S_DEFAULTS), always written. */
const inCluster = (name: string): FlagSpec => {
  const spec = specOf(COORDINATOR_FLAGS, name);
  return { ...spec, default: K8S_DEFAULTS[name], help: `${spec.help} (ddp's default: ${spec.default}; pods may wait minutes to be scheduled)` };
};

const DNS_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$/;

const K8S_FLAGS: readonly FlagSpec[] = [
  { name: 'workers', type: 'int', min: 1, help: 'worker pods, the Indexed Job\'s completions and parallelism (required)' },
  { name: 'image', type: 'string', metavar: 'IMAGE', help: 'the ddp image for every pod, e.g. built from deploy/Dockerfile (required)' },
  { name: 'name', type: 'string', metavar: 'NAME', default: 'ddp', help: 'prefix of every object\'s name (NAME-coordinator, NAME-worker, ...)' },
  { name: 'namespace', type: 'string', metavar: 'NS', help: 'namespace of every object (default: kubectl\'s current one)' },
  { name: 'port', type: 'int', min: 1, max: 65535, default: 7070, help: 'the coordinator\'s port (its Service\'s too)' },
  specOf(COORDINATOR_FLAGS, 'allreduce'),
  { name: 'token-secret', type: 'string', metavar: 'NAME', help: 'Secret whose key `token` is the worker token (and `view-token`, if present, the read-only one) (default: NAME-token)' },
  { name: 'tls-secret', type: 'string', metavar: 'NAME', help: 'Secret holding ca.crt, node.crt and node.key (ddp certs): TLS on every link, wss:// to the coordinator' },
  { name: 'storage', type: 'string', metavar: 'SIZE', default: '1Gi', help: 'size of the PersistentVolumeClaim for checkpoints and the model' },
  { name: 'storage-class', type: 'string', metavar: 'CLASS', help: 'storageClassName of the claim (default: the cluster\'s default class)' },
  { name: 'worker-cpu', type: 'string', metavar: 'CPU', help: 'CPU request of each worker pod, e.g. 2 or 1500m' },
  { name: 'worker-memory', type: 'string', metavar: 'SIZE', help: 'memory request of each worker pod, e.g. 2Gi' },
  ...JOB_FLAG_NAMES.map((n) => (n in K8S_DEFAULTS ? inCluster(n) : passedOn(COORDINATOR_FLAGS, n))),
  ...SHARED_FLAG_NAMES.map((n) => passedOn(COORDINATOR_FLAGS, n)),
];

export const DEPLOY_HELP = `Usage: ddp deploy k8s --workers N --image IMAGE [flags] > ddp.yaml

Prints Kubernetes manifests for one ddp job: the coordinator as a Job with a Service (port 7070), the
workers as an Indexed Job of N pods with a headless Service, the coordinator's checkpoints and model on a
PersistentVolumeClaim (it runs with --resume: a replaced pod continues from the newest checkpoint).
Every ddp setting is a DDP_* variable of its container. The worker token comes from a Secret, which
you create first (the file's comments say how):

  kubectl create secret generic ddp-token --from-literal=token=$(openssl rand -hex 16)
  ddp deploy k8s --workers 4 --image registry.example/ddp:1 > ddp.yaml && kubectl apply -f ddp.yaml

The job's flags below (--epochs, --batch-size, ...) are those of ddp coordinator start; only the ones
given are written, the others keep ddp's defaults.

Flags:
${formatFlags(K8S_FLAGS)}`;

function check(ok: boolean, message: string): void {
  if (!ok) throw new UsageError(message);
}

/** The options of the manifests, every value checked (one-line UsageError otherwise). */
export function k8sOptionsFromFlags(v: FlagValues): K8sOptions {
  const workers = num(v, 'workers');
  if (workers === undefined) throw new UsageError('--workers N is required (how many worker pods)');
  const image = str(v, 'image');
  if (image === undefined || image === '') throw new UsageError('--image IMAGE is required (the ddp image, e.g. built from deploy/Dockerfile)');
  check(/^\S+$/.test(image), `--image expects an image reference without spaces, got '${image}'`);
  const name = strOf(v, 'name');
  check(DNS_LABEL.test(name) && name.length <= 40, `--name must be a DNS label of at most 40 characters (lower-case letters, digits, '-'; a letter first), got '${name}'`);
  const namespace = str(v, 'namespace');
  check(namespace === undefined || (DNS_LABEL.test(namespace) && namespace.length <= 63), `--namespace must be a DNS label, got '${namespace}'`);
  const tokenSecret = str(v, 'token-secret') ?? `${name}-token`;
  const tlsSecret = str(v, 'tls-secret');
  for (const [flag, secret] of [['token-secret', tokenSecret], ['tls-secret', tlsSecret]] as const) {
    check(secret === undefined || (DNS_SUBDOMAIN.test(secret) && secret.length <= 253), `--${flag} must be a Secret's name (lower-case letters, digits, '-', '.'), got '${secret}'`);
  }
  const storage = strOf(v, 'storage');
  const storageClass = str(v, 'storage-class');
  check(storageClass === undefined || DNS_SUBDOMAIN.test(storageClass), `--storage-class must be a StorageClass's name, got '${storageClass}'`);
  for (const flag of ['storage', 'worker-cpu', 'worker-memory']) {
    const q = str(v, flag);
    check(q === undefined || QUANTITY.test(q), `--${flag} expects a Kubernetes quantity (e.g. 500m, 2, 1Gi), got '${q}'`);
  }
  const minWorkers = num(v, 'min-workers');
  const maxWorkers = num(v, 'max-workers');
  check(minWorkers === undefined || minWorkers <= workers, `--min-workers ${minWorkers} is more than --workers ${workers}`);
  check(maxWorkers === undefined || maxWorkers >= workers, `--max-workers ${maxWorkers} is less than --workers ${workers}`);
  const conflict = wireConflict(wireConfigFromFlags(v));
  if (conflict) throw new UsageError(conflict);

  const pick = (names: readonly string[]) => Object.fromEntries(names.filter((n) => v[n] !== undefined).map((n) => [n, v[n] as string | number | boolean]));
  return {
    name,
    namespace,
    image,
    workers,
    port: num(v, 'port') ?? 7070,
    tokenSecret,
    tlsSecret,
    storage,
    storageClass,
    workerCpu: str(v, 'worker-cpu'),
    workerMemory: str(v, 'worker-memory'),
    coordinatorFlags: pick(['allreduce', ...JOB_FLAG_NAMES, ...SHARED_FLAG_NAMES]),
    workerFlags: pick(SHARED_FLAG_NAMES),
    coordinatorSpecs: COORDINATOR_FLAGS,
    workerSpecs: WORKER_FLAGS,
  };
}

const shellWord = (w: string) => (/^[A-Za-z0-9_./:=@%+,-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`);

/** The command line as a shell would take it back, with the DDP_* variables it read in front. */
function commandLine(argv: readonly string[]): string {
  const fromEnv = K8S_FLAGS.filter((s) => {
    const value = process.env[envOf(s)];
    return value !== undefined && value !== '' && !argv.some((a) => a === `--${s.name}` || a.startsWith(`--${s.name}=`));
  }).map((s) => `${envOf(s)}=${shellWord(process.env[envOf(s)]!)}`);
  return [...fromEnv, 'ddp', 'deploy', ...argv.map(shellWord)].join(' ');
}

/** `ddp deploy k8s ...` as YAML text (argv: what follows `ddp deploy`). */
export function renderDeploy(argv: readonly string[]): string | undefined {
  const { values, positionals, help } = parseFlags(argv, K8S_FLAGS, { positionals: 1 });
  if (help) return undefined;
  const target = positionals[0];
  if (target !== 'k8s') throw new UsageError(target === undefined ? "ddp deploy: missing target (expected 'k8s')" : `ddp deploy: unknown target '${target}' (expected 'k8s')`);
  const o = k8sOptionsFromFlags(values);
  return yamlDocuments(k8sManifests(o), k8sComments(o, commandLine(argv)));
}

export async function runDeployCommand(argv: string[]): Promise<number> {
  const text = renderDeploy(argv);
  process.stdout.write(text ?? `${DEPLOY_HELP}\n`);
  return 0;
}
