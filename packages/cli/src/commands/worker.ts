import { TOKEN_ENV, initBackend, readTlsCa, readTlsMaterial, Reporter, type TlsMaterial } from '@ddp/core';
import { runWorker, WORKER_EXIT } from '@ddp/worker';
import { formatFlags, numOf, parseFlags, str, UsageError, type FlagSpec, type FlagValues } from '../args.js';
import { exitWithLauncher, notifyRank, urlFromLauncher } from '../launch/parent-link.js';
import { certKeyFiles } from '../tls-flags.js';
import { BACKEND_FLAG, LOG_FORMAT_FLAG, backendFrom, logFormatFrom } from '../training-flags.js';

export const WORKER_FLAGS: readonly FlagSpec[] = [
  { name: 'connect', type: 'string', metavar: 'ws://HOST:PORT', help: 'the coordinator to join (required)' },
  { name: 'token', type: 'string', metavar: 'T', env: TOKEN_ENV, help: 'shared secret the coordinator expects' },
  { name: 'connect-timeout', type: 'number', min: 0, default: 60, metavar: 'SECONDS', help: 'keep retrying the connection (with backoff) this long' },
  { name: 'heartbeat-timeout', type: 'number', min: 1, default: 120, metavar: 'SECONDS', help: 'count a coordinator silent this long as lost' },
  {
    name: 'reconnect-timeout',
    type: 'number',
    min: 0,
    default: 60,
    metavar: 'SECONDS',
    help: 'after losing the coordinator mid-job, keep trying to rejoin one at the same address this long (0: exit at once)',
  },
  { name: 'data-dir', type: 'string', metavar: 'DIR', help: 'this worker\'s copy of the data set, if not where the coordinator says' },
  { name: 'peer-host', type: 'string', metavar: 'ADDR', help: 'ring mode: interface to listen on for ring neighbours (default: this host\'s address on the link to the coordinator)' },
  { name: 'tls-ca', type: 'string', metavar: 'FILE', help: 'wss://: the CA the coordinator\'s (and ring peers\') certificates must verify against (ddp certs writes ca.crt)' },
  { name: 'tls-cert', type: 'string', metavar: 'FILE', help: 'ring mode over TLS: this worker\'s certificate for its peer links (node.crt); needs --tls-key and --tls-ca' },
  { name: 'tls-key', type: 'string', metavar: 'FILE', help: 'the private key of --tls-cert (node.key)' },
  { name: 'peer-advertise', type: 'string', metavar: 'ADDR', help: 'ring mode: address the neighbours dial, when it differs from --peer-host (e.g. behind NAT, or with --peer-host 0.0.0.0)' },
  BACKEND_FLAG,
  LOG_FORMAT_FLAG,
];

export const WORKER_HELP = `Usage: ddp worker --connect ws://HOST:PORT [flags]

Joins a coordinator (ddp coordinator start) and computes gradient sums on the shards it is given until
the coordinator says the job is done. It reads the data set locally (the coordinator says which, and
checks it is the same copy), or receives the pixels if the coordinator runs with --serve-data.
In ring mode (the coordinator's default, --allreduce ring) the worker also holds the weights, draws its
own shard of every step, listens for its ring neighbours (--peer-host) and reduces gradients with them
directly.

TLS: with --connect wss://HOST:PORT the coordinator's certificate must verify against --tls-ca (or the
system's CAs). In ring mode the peer links then use TLS too: --tls-cert/--tls-key serve this worker's
peer listener and are presented when it dials; peers verify each other against --tls-ca. A plaintext
port, a certificate that does not verify or a wrong token end the worker with exit code 3 and the
DDP_* code (DDP_TLS_UNSUPPORTED, DDP_TLS_REQUIRED, DDP_TLS_UNVERIFIED, DDP_AUTH).

If the coordinator goes away mid-job (its process died, its host restarted: the connection closed
without a word from it, or it was silent for --heartbeat-timeout), the worker does not exit: it
reconnects to the same address (under ddp train: the newest one the launcher gave) with backoff for
up to --reconnect-timeout and rejoins, if the coordinator there serves the same job (same job id and fingerprint as when it first joined; see
ddp coordinator start --job-id). Nothing is retried before the first welcome (--connect-timeout
covers the first connection), nor after the coordinator ended the job, refused or dropped the worker.

Exit codes: 0 job done; 1 the coordinator was lost and none took the worker back within
--reconnect-timeout, the coordinator dropped the worker, data set mismatch or another failure;
2 bad flags; 3 refused by the coordinator (wrong token, other protocol version, job full), or the
coordinator it reconnected to serves another job (DDP_JOB_CHANGED).

Flags:
${formatFlags(WORKER_FLAGS)}`;

/** --tls-ca (verify the coordinator) and --tls-cert/--tls-key/--tls-ca (ring peer links), read and checked. */
function workerTlsFromFlags(values: FlagValues, connect: string | undefined): { ca?: Buffer; peerTls?: TlsMaterial & { ca: Buffer } } {
  const caFile = str(values, 'tls-ca');
  if (caFile !== undefined && connect !== undefined && connect.startsWith('ws:')) throw new UsageError(`--tls-ca is for a wss:// coordinator, but --connect is ${connect}`);
  const files = certKeyFiles(values);
  if (files === undefined) return caFile === undefined ? {} : { ca: readTlsCa(caFile) };
  if (caFile === undefined) throw new UsageError('--tls-cert needs --tls-ca: ring peers verify each other against the job CA');
  const material = readTlsMaterial({ ...files, ca: caFile });
  return { ca: material.ca, peerTls: { ...material, ca: material.ca! } };
}

export async function runWorkerCommand(argv: string[]): Promise<number> {
  const { values, help } = parseFlags(argv, WORKER_FLAGS, { positionals: 0 });
  if (help) {
    console.log(WORKER_HELP);
    return 0;
  }
  const given = str(values, 'connect');
  const fromLauncher = given ? null : urlFromLauncher();
  if (!given && !fromLauncher) throw new UsageError('--connect ws://HOST:PORT is required');
  if (given && !/^wss?:\/\/[^/\s]+/.test(given)) throw new UsageError(`--connect expects ws://HOST:PORT, got '${given}'`);
  const { ca, peerTls } = workerTlsFromFlags(values, given);
  const reporter = new Reporter(logFormatFrom(values));
  const releaseLauncher = exitWithLauncher('worker');
  try {
    // The backend starts while the connection opens, or while `ddp train` waits for its coordinator.
    const backend = initBackend(backendFrom(values));
    const first = given ?? (await fromLauncher!.first);
    // Reconnections go to the newest address the launcher gave (it may restart the coordinator elsewhere).
    const url = given ? () => given : () => fromLauncher!.latest() || first;
    let backendName = '';
    const end = await runWorker({
      url,
      token: str(values, 'token') ?? '',
      backend: backend.then((b) => (backendName = b.name)),
      connectTimeoutMs: numOf(values, 'connect-timeout') * 1000,
      heartbeatTimeoutMs: numOf(values, 'heartbeat-timeout') * 1000,
      reconnectTimeoutMs: numOf(values, 'reconnect-timeout') * 1000,
      dataDir: str(values, 'data-dir'),
      peerHost: str(values, 'peer-host'),
      peerAdvertise: str(values, 'peer-advertise'),
      ca,
      peerTls,
      log: (line) => process.stderr.write(`${line}\n`),
      onWelcome: (w, rejoin, at) => {
        notifyRank(w.rank);
        if (rejoin > 0) {
          reporter.info(`worker: rejoined job ${w.job.id} at ${at} as rank ${w.rank} of ${w.workers} (rejoin ${rejoin})`);
          return;
        }
        reporter.info(
          `worker: connected to ${at} as rank ${w.rank} of ${w.workers} (backend ${backendName}, ${w.config.allreduce} allreduce${w.config.compress === 'fp16' ? ', fp16 gradients' : ''}, ` +
            `${w.data.serveData ? `${w.data.dataset}, ${w.data.trainCount} samples sent by the coordinator` : `${w.data.dataset}, ${w.data.trainCount} samples read locally`})`,
        );
      },
    });
    if (end.exitCode !== WORKER_EXIT.DONE) process.stderr.write(`ddp worker: ${end.message}\n`);
    return end.exitCode;
  } finally {
    releaseLauncher();
  }
}
