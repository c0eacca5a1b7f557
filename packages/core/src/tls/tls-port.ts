/**
 * One TCP port for HTTP and WebSockets, plaintext or TLS. With TLS, a small front server looks at
 * each connection's first byte: a TLS ClientHello (0x16) goes on to the HTTPS server; anything else
 * is a plaintext client on a TLS port, answered with a plaintext HTTP 400 whose `refusalHeader`
 * names DDP_TLS_REQUIRED, so that a ws:// client gets a clear refusal instead of a hang or a reset.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import type { TlsMaterial } from './tls-material.js';

/** The header a refusal before the WebSocket upgrade carries: "CODE: message". */
export const REFUSAL_HEADER = 'x-ddp-refusal';

export interface PortServerOptions {
  /**
   * Serve TLS with this certificate. `requestClientCert` also asks the client for one, verified
   * against `tls.ca`; the handshake goes through either way, so that the upgrade handler can refuse
   * an unverified client with a readable answer (check `socket.authorized`) instead of a reset.
   */
  tls?: TlsMaterial & { requestClientCert?: boolean };
  /** Plain requests (not upgrades). */
  onRequest: http.RequestListener;
  /** Said in the 400 to a plaintext client on the TLS port. */
  plaintextRefusal?: string;
  /** A plaintext client was refused (for a note); `remote` is host:port. */
  onPlaintextRefused?: (remote: string) => void;
  /** A TLS handshake failed (e.g. a client certificate that does not verify). */
  onTlsError?: (remote: string, err: Error) => void;
}

export interface PortServer {
  /** Emits 'upgrade' (WebSocket handshakes) and serves requests. */
  readonly server: http.Server;
  readonly tls: boolean;
  /** Binds; rejects with the listen error (EADDRINUSE...). */
  listen(port: number, host: string): Promise<number>;
  /** Stops listening and ends idle keep-alive connections (they would hold the port open). */
  close(): Promise<void>;
  /** Stops accepting; connections already open (upgraded WebSockets) live on. */
  stopAccepting(): void;
}

export function createPortServer(opts: PortServerOptions): PortServer {
  if (!opts.tls) {
    const server = http.createServer(opts.onRequest);
    return { server, tls: false, listen: (port, host) => listenOn(server, port, host), close: () => closeAll(server), stopAccepting: () => server.close() };
  }
  const { cert, key, ca, requestClientCert } = opts.tls;
  const server = https.createServer({ cert, key, ...(ca ? { ca } : {}), ...(requestClientCert ? { requestCert: true, rejectUnauthorized: false } : {}) }, opts.onRequest);
  // After a reset the socket has forgotten its peer: the front server remembers it.
  const remotes = new WeakMap<object, string>();
  server.on('tlsClientError', (err, socket) => opts.onTlsError?.(remotes.get((socket as unknown as { _parent?: object })._parent ?? socket) ?? 'a client', err));
  const refusal = `DDP_TLS_REQUIRED: ${opts.plaintextRefusal ?? 'this port serves TLS only (wss://, https://)'}`;
  const front = net.createServer({ pauseOnConnect: true }, (socket) => {
    socket.on('error', () => {});
    remotes.set(socket, `${socket.remoteAddress}:${socket.remotePort}`);
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      if (first[0] === 0x16) {
        server.emit('connection', socket);
        return;
      }
      opts.onPlaintextRefused?.(`${socket.remoteAddress}:${socket.remotePort}`);
      const body = `${refusal}\n`;
      socket.end(`HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: text/plain\r\n${REFUSAL_HEADER}: ${refusal}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    });
    socket.resume();
  });
  return {
    server,
    tls: true,
    listen: (port, host) => listenOn(front, port, host),
    stopAccepting: () => {
      front.close();
      server.close();
    },
    close: async () => {
      await Promise.all([new Promise<void>((resolve) => front.close(() => resolve())), closeAll(server)]);
    },
  };
}

function closeAll(server: http.Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  return closed;
}

function listenOn(server: net.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      server.on('error', () => {}); // after listening, errors surface per connection
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}
