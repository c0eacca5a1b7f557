/**
 * The Kubernetes objects of a ddp job, as plain data (yaml.ts writes them):
 *
 *   PersistentVolumeClaim NAME-state        the coordinator's checkpoints and saved model
 *   Service NAME-coordinator                 the address the workers dial (port 7070)
 *   Job NAME-coordinator                     one coordinator pod; a failed one is replaced and resumes
 *   Service NAME-workers                     headless: a DNS name per worker pod (its subdomain)
 *   Job NAME-worker                          an Indexed Job of N worker pods
 *
 * Every ddp setting is a DDP_* variable of its container (container-env.ts checks each against the
 * flag table of the command the container runs); the token comes from a Secret, never the manifest.
 */
import { flagEnv, type EnvVar, type FlagSource } from './container-env.js';
import { livenessProbe, readinessProbe } from './k8s-probes.js';
import type { FlagSpec } from '../args.js';
import type { YamlValue } from './yaml.js';

export interface K8sOptions {
  /** Prefix of every object's name, and the app.kubernetes.io/instance label. */
  name: string;
  namespace?: string;
  image: string;
  workers: number;
  port: number;
  /** Secret holding `token` (and optionally `view-token`). */
  tokenSecret: string;
  /** Secret holding ca.crt, node.crt and node.key (ddp certs): TLS on every link. */
  tlsSecret?: string;
  /** Size of the PersistentVolumeClaim, a Kubernetes quantity (1Gi). */
  storage: string;
  storageClass?: string;
  /** Resource requests of each worker container (Kubernetes quantities). */
  workerCpu?: string;
  workerMemory?: string;
  /** Flags of `ddp coordinator start` beyond those set here (the job's settings), and of `ddp worker`. */
  coordinatorFlags: Record<string, string | number | boolean>;
  workerFlags: Record<string, string | number | boolean>;
  /** The flag tables of the two commands, to check every variable against. */
  coordinatorSpecs: readonly FlagSpec[];
  workerSpecs: readonly FlagSpec[];
}

/** Where the coordinator keeps what must outlive its pod (the PersistentVolumeClaim). */
export const STATE_DIR = '/ddp';
export const TLS_DIR = '/etc/ddp/tls';
/** The worker pod's index in its Indexed Job, for the name its ring neighbours dial (TLS). */
const INDEX_ENV = 'DDP_POD_INDEX';
const NAMESPACE_ENV = 'DDP_POD_NAMESPACE';
/** The node image's unprivileged user (deploy/Dockerfile runs as it too). */
const UID = 1000;
const PORT_NAME = 'ddp';

export const names = (o: Pick<K8sOptions, 'name'>) => ({
  state: `${o.name}-state`,
  coordinator: `${o.name}-coordinator`,
  workersService: `${o.name}-workers`,
  workerJob: `${o.name}-worker`,
});

function labels(o: K8sOptions, component: 'coordinator' | 'worker' | 'state') {
  return { 'app.kubernetes.io/name': 'ddp', 'app.kubernetes.io/instance': o.name, 'app.kubernetes.io/component': component };
}

function metadata(o: K8sOptions, name: string, component: 'coordinator' | 'worker' | 'state') {
  return { name, ...(o.namespace ? { namespace: o.namespace } : {}), labels: labels(o, component) };
}

const selector = (o: K8sOptions, component: 'coordinator' | 'worker') => ({ 'app.kubernetes.io/instance': o.name, 'app.kubernetes.io/component': component });

const POD_SECURITY = { runAsNonRoot: true, runAsUser: UID, runAsGroup: UID, fsGroup: UID, seccompProfile: { type: 'RuntimeDefault' } };
const CONTAINER_SECURITY = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } };

/** Volumes every pod gets: a writable /tmp (the root filesystem is read-only) and the TLS files. */
function commonVolumes(o: K8sOptions) {
  const volumes: YamlValue[] = [{ name: 'tmp', emptyDir: {} }];
  const mounts: YamlValue[] = [{ name: 'tmp', mountPath: '/tmp' }];
  if (o.tlsSecret) {
    // 0440 with fsGroup: readable by the ddp user's group, by nobody else.
    volumes.push({ name: 'tls', secret: { secretName: o.tlsSecret, defaultMode: 0o440, items: ['ca.crt', 'node.crt', 'node.key'].map((k) => ({ key: k, path: k })) } });
    mounts.push({ name: 'tls', mountPath: TLS_DIR, readOnly: true });
  }
  return { volumes, mounts };
}

/** The pod's certificate and key, for the coordinator and the workers alike. */
const tlsNodeFlags = (o: K8sOptions) => (o.tlsSecret ? { 'tls-cert': `${TLS_DIR}/node.crt`, 'tls-key': `${TLS_DIR}/node.key` } : {});

/** The exit codes that no retry can fix: a usage error (2), and for a worker a refusal (3: wrong token, job full, another job). */
function podFailurePolicy(container: string, exitCodes: number[]) {
  return {
    rules: [
      { action: 'FailJob', onExitCodes: { containerName: container, operator: 'In', values: exitCodes } },
      // A node drained or a pod preempted does not count against backoffLimit.
      { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
    ],
  };
}

export function coordinatorEnv(o: K8sOptions): EnvVar[] {
  const token: FlagSource = { secret: o.tokenSecret, key: 'token' };
  const viewToken: FlagSource = { secret: o.tokenSecret, key: 'view-token', optional: true };
  const flags: Record<string, FlagSource | undefined> = {
    workers: o.workers,
    // Reached through its Service, so not on loopback; a token is then required (it is).
    host: '0.0.0.0',
    port: o.port,
    token,
    'view-token': viewToken,
    out: `${STATE_DIR}/model`,
    'checkpoint-dir': `${STATE_DIR}/checkpoints`,
    // A replaced pod continues from the newest checkpoint; the first one finds none and starts at step 0.
    resume: true,
    ...o.coordinatorFlags,
    ...tlsNodeFlags(o),
  };
  return flagEnv('coordinator start', o.coordinatorSpecs, flags);
}

export function workerEnv(o: K8sOptions): EnvVar[] {
  const scheme = o.tlsSecret ? 'wss' : 'ws';
  const flags: Record<string, FlagSource | undefined> = {
    connect: `${scheme}://${names(o).coordinator}:${o.port}`,
    token: { secret: o.tokenSecret, key: 'token' },
    // A pod can take minutes to be scheduled and pulled: the coordinator's first start and its
    // replacement after a failure (the workers wait for it to come back at the same address).
    'connect-timeout': 600,
    'reconnect-timeout': 600,
    ...o.workerFlags,
    ...tlsNodeFlags(o),
    ...(o.tlsSecret ? { 'tls-ca': `${TLS_DIR}/ca.crt` } : {}),
    // With TLS, ring neighbours dial a name the certificate holds (*.WORKERS-SERVICE.NAMESPACE.svc), not
    // a pod IP: the pod's own DNS name, HOSTNAME.SUBDOMAIN.NAMESPACE.svc, where an Indexed Job's pod is
    // JOB-INDEX. (Node accepts a wildcard only with two labels or more after it, hence .NAMESPACE.svc.)
    ...(o.tlsSecret ? { 'peer-advertise': `${names(o).workerJob}-$(${INDEX_ENV}).${names(o).workersService}.$(${NAMESPACE_ENV}).svc` } : {}),
  };
  // JOB_COMPLETION_INDEX (the worker's rank hint) is set by Kubernetes in an Indexed Job; it is added
  // after the container's own variables, so $(...) cannot name it: the index is read here first.
  const index: EnvVar[] = o.tlsSecret
    ? [
        { name: INDEX_ENV, valueFrom: { fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" } } },
        { name: NAMESPACE_ENV, valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      ]
    : [];
  return [...index, ...flagEnv('worker', o.workerSpecs, flags)];
}

function pvc(o: K8sOptions) {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: metadata(o, names(o).state, 'state'),
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: o.storage } }, ...(o.storageClass ? { storageClassName: o.storageClass } : {}) },
  };
}

function coordinatorService(o: K8sOptions) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(o, names(o).coordinator, 'coordinator'),
    spec: {
      selector: selector(o, 'coordinator'),
      ports: [{ name: PORT_NAME, port: o.port, targetPort: PORT_NAME }],
      // /readyz turns 200 only once the workers have joined, through this Service: route before ready.
      publishNotReadyAddresses: true,
    },
  };
}

function coordinatorJob(o: K8sOptions) {
  const { volumes, mounts } = commonVolumes(o);
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: metadata(o, names(o).coordinator, 'coordinator'),
    spec: {
      backoffLimit: 3,
      podFailurePolicy: podFailurePolicy('coordinator', [2]),
      template: {
        metadata: { labels: labels(o, 'coordinator') },
        spec: {
          // podFailurePolicy needs Never: a failed pod is replaced by a new one (same claim, same Service).
          restartPolicy: 'Never',
          securityContext: POD_SECURITY,
          containers: [
            {
              name: 'coordinator',
              image: o.image,
              args: ['coordinator', 'start'],
              env: coordinatorEnv(o),
              ports: [{ name: PORT_NAME, containerPort: o.port }],
              readinessProbe: readinessProbe(),
              livenessProbe: livenessProbe(PORT_NAME, o.tlsSecret !== undefined),
              volumeMounts: [{ name: 'state', mountPath: STATE_DIR }, ...mounts],
              securityContext: CONTAINER_SECURITY,
            },
          ],
          volumes: [{ name: 'state', persistentVolumeClaim: { claimName: names(o).state } }, ...volumes],
        },
      },
    },
  };
}

function workersService(o: K8sOptions) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(o, names(o).workersService, 'worker'),
    spec: {
      // Headless: no virtual IP, a DNS name per pod (NAME-worker-I.NAME-workers) through the pods' subdomain.
      clusterIP: 'None',
      selector: selector(o, 'worker'),
      publishNotReadyAddresses: true,
    },
  };
}

function workerJob(o: K8sOptions) {
  const { volumes, mounts } = commonVolumes(o);
  const resources = o.workerCpu || o.workerMemory ? { requests: { ...(o.workerCpu ? { cpu: o.workerCpu } : {}), ...(o.workerMemory ? { memory: o.workerMemory } : {}) } } : undefined;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: metadata(o, names(o).workerJob, 'worker'),
    spec: {
      completionMode: 'Indexed',
      completions: o.workers,
      parallelism: o.workers,
      // A lost worker's replacement joins the running job (elastic membership): allow each one failure.
      backoffLimit: o.workers,
      podFailurePolicy: podFailurePolicy('worker', [2, 3]),
      template: {
        metadata: { labels: labels(o, 'worker') },
        spec: {
          subdomain: names(o).workersService,
          restartPolicy: 'Never',
          securityContext: POD_SECURITY,
          containers: [
            {
              name: 'worker',
              image: o.image,
              args: ['worker'],
              env: workerEnv(o),
              ...(resources ? { resources } : {}),
              volumeMounts: mounts,
              securityContext: CONTAINER_SECURITY,
            },
          ],
          volumes,
        },
      },
    },
  };
}

/** Every object, in the order kubectl should create them. */
export function k8sManifests(o: K8sOptions): YamlValue[] {
  return [pvc(o), coordinatorService(o), coordinatorJob(o), workersService(o), workerJob(o)] as YamlValue[];
}

/** The comment at the top of the file: how to create the Secrets, apply, watch, and collect the model. */
export function k8sComments(o: K8sOptions, commandLine: string): string[] {
  const n = names(o);
  const ns = o.namespace ? ` -n ${o.namespace}` : '';
  const lines = [
    `ddp on Kubernetes, written by: ${commandLine}`,
    'Regenerate rather than edit; each ddp setting is a DDP_* variable of its container (--foo-bar is DDP_FOO_BAR).',
    '',
    'First the worker token, kept in a Secret (never in this file):',
    `  kubectl${ns} create secret generic ${o.tokenSecret} --from-literal=token=$(openssl rand -hex 16)`,
    `  (add --from-literal=view-token=$(openssl rand -hex 16) for a read-only dashboard token)`,
  ];
  if (o.tlsSecret) {
    lines.push(
      `TLS: the Secret ${o.tlsSecret} holds ca.crt, node.crt and node.key (from ddp certs); the certificate`,
      `must name ${n.coordinator}, the host the workers dial (wss://${n.coordinator}:${o.port}), and`,
      `*.${n.workersService}.${o.namespace ?? 'default'}.svc, the names ring neighbours dial (${n.workerJob}-0.${n.workersService}.${o.namespace ?? 'default'}.svc, ...):`,
      `  ddp certs --out certs --hosts '${n.coordinator},*.${n.workersService}.${o.namespace ?? 'default'}.svc' && cd certs`,
      `  kubectl${ns} create secret generic ${o.tlsSecret} --from-file=ca.crt --from-file=node.crt --from-file=node.key`,
    );
  }
  lines.push(
    'Then:',
    `  kubectl${ns} apply -f ddp.yaml`,
    `  kubectl${ns} logs -f job/${n.coordinator}`,
    `  kubectl${ns} wait --for=condition=complete job/${n.coordinator} --timeout=24h`,
    `Dashboard: kubectl${ns} port-forward svc/${n.coordinator} ${o.port}, then http://127.0.0.1:${o.port}/?token=TOKEN`,
    `The model and the checkpoints stay on the claim ${n.state} (${STATE_DIR}/model, ${STATE_DIR}/checkpoints): a failed`,
    `coordinator pod is replaced and resumes from the newest checkpoint, and the workers rejoin it.`,
    `kubectl delete -f ddp.yaml deletes the claim too: copy the model out first.`,
    `The workers' Indexed Job numbers them (JOB_COMPLETION_INDEX, their rank hint); ring neighbours dial`,
    o.tlsSecret ? `each other's pod name (${n.workerJob}-INDEX.${n.workersService}.NAMESPACE.svc).` : `each other's pod IP (the address each has towards the coordinator).`,
  );
  return lines;
}
