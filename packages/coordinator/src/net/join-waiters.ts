/**
 * Waiting for workers to join, shared by the star and ring executors: callers wait for a member
 * count; the executor calls `notify()` whenever membership grows.
 */
export class JoinWaiters {
  private waiters: Array<() => void> = [];

  constructor(private readonly members: () => number) {}

  /** Wakes every waiter so that each re-checks the member count. */
  notify(): void {
    this.waiters.slice().forEach((w) => w());
  }

  /** Resolves once `n` workers are members; rejects after `timeoutMs` (--join-timeout) or when `signal` aborts. */
  wait(n: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | null = null;
      const done = (err?: Error) => {
        if (timer) clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const check = () => {
        if (this.members() >= n) done();
      };
      const onAbort = () => done(new Error(`interrupted while waiting for workers (${this.members()} of ${n} joined)`));
      this.waiters.push(check);
      signal?.addEventListener('abort', onAbort);
      if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => done(new Error(`only ${this.members()} of ${n} worker(s) joined within ${timeoutMs / 1000} s (--join-timeout)`)), timeoutMs);
      }
      check();
    });
  }
}
