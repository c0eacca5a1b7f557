import { RunError, type Reporter } from '@ddp/core';
import { UsageError } from './args.js';

/**
 * A run that ends in an error says so as an `error` event too (after which main.ts prints it and
 * picks the exit code): scripts read the code, and a supervising `ddp train` knows the run ended
 * on purpose (a coordinator that dies without one is restarted). A usage error is not a run's end.
 */
export function reportFailure(reporter: Reporter, err: unknown): void {
  if (err instanceof RunError) reporter.event({ event: 'error', code: err.code, message: err.message });
  else if (!(err instanceof UsageError)) reporter.event({ event: 'error', code: 'DDP_INTERNAL', message: err instanceof Error ? err.message : String(err) });
}
