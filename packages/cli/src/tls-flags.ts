// --tls-cert and --tls-key, which go together on `ddp coordinator start` and `ddp worker`.
import { str, UsageError, type FlagValues } from './args.js';

/** The two files, or undefined when neither flag is given; one without the other is a usage error. */
export function certKeyFiles(values: FlagValues): { cert: string; key: string } | undefined {
  const cert = str(values, 'tls-cert');
  const key = str(values, 'tls-key');
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) throw new UsageError(`${cert === undefined ? '--tls-key' : '--tls-cert'} needs ${cert === undefined ? '--tls-cert' : '--tls-key'} too`);
  return { cert, key };
}
