/**
 * The HTTP side of the coordinator's port (the WebSocket upgrade is handled beside it, in
 * coordinator-server.ts):
 *
 *   GET /healthz   200 "ok" while the process lives; never needs the token.
 *   GET /readyz    200 once training has started, 503 before (and after the job), one line saying why.
 *   GET /metrics   Prometheus text format.
 *   anything else  404.
 *
 * With a token set, /readyz and /metrics need it, as `Authorization: Bearer TOKEN` or `?token=TOKEN`,
 * compared in constant time (tokensMatch); 401 otherwise. The same rule as for workers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tokensMatch } from '@ddp/core';

export interface HttpEndpoints {
  /** What /readyz answers: null when ready, else why not (one line). */
  readiness?: () => string | null;
  /** What /metrics serves; absent: 404. */
  metrics?: { contentType: string; text(): Promise<string> };
}

export interface HttpContext extends HttpEndpoints {
  /** The shared token ('' accepts anyone). */
  token: string;
  /** Default readiness, when `readiness` is not given. */
  defaultReadiness: () => string | null;
}

const PROTECTED = new Set(['/readyz', '/metrics']);
const KNOWN = new Set(['/healthz', ...PROTECTED]);

function reply(res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8', head = false): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(head ? undefined : body);
}

/** The token a request presents: the Authorization bearer, else ?token=; '' when none. */
function presented(req: IncomingMessage, url: URL): string {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    return m ? m[1]! : '';
  }
  return url.searchParams.get('token') ?? '';
}

export function serveHttp(req: IncomingMessage, res: ServerResponse, ctx: HttpContext): void {
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://coordinator');
  } catch {
    return reply(res, 400, 'bad request URL\n');
  }
  const path = url.pathname;
  if (!KNOWN.has(path) || (path === '/metrics' && !ctx.metrics)) return reply(res, 404, `not found: ${path} (try /healthz, /readyz, /metrics)\n`);
  const head = req.method === 'HEAD';
  if (req.method !== 'GET' && !head) {
    res.setHeader('allow', 'GET, HEAD');
    return reply(res, 405, `method ${req.method} not allowed\n`);
  }
  if (PROTECTED.has(path) && ctx.token !== '' && !tokensMatch(ctx.token, presented(req, url))) {
    res.setHeader('www-authenticate', 'Bearer');
    return reply(res, 401, 'unauthorized: give the token as "Authorization: Bearer TOKEN" or ?token=TOKEN\n', undefined, head);
  }
  switch (path) {
    case '/healthz':
      return reply(res, 200, 'ok\n', undefined, head);
    case '/readyz': {
      const why = (ctx.readiness ?? ctx.defaultReadiness)();
      return why === null ? reply(res, 200, 'ready\n', undefined, head) : reply(res, 503, `${why.replace(/\s*\n\s*/g, ' ')}\n`, undefined, head);
    }
    case '/metrics': {
      const m = ctx.metrics!;
      m.text().then(
        (text) => reply(res, 200, text, m.contentType, head),
        (err: unknown) => reply(res, 500, `metrics failed: ${err instanceof Error ? err.message : String(err)}\n`),
      );
      return;
    }
  }
}
