/**
 * The proxy's one listener. Each connection goes to the front its first
 * byte names (sniff.ts). It owns the limits that protect the process: the handshake
 * deadline, the cap on handshakes in flight and the header size cap, and
 * the refusal to serve other machines without credentials.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { debuglog } from 'node:util';
import { asKubesocksError, KubesocksError } from '../errors.js';
import { openListenerRefusal } from '../net/loopback.js';
import { positiveInteger } from '../net/options.js';
import { CredentialChecker, validateCredentials, type Credentials } from './auth.js';
import { ClientConnection, type ConnectionRecord, type ProxyContext, type ProxyStats } from './client-connection.js';
import { Observer } from '../observe/observer.js';
import { HttpFront } from './http.js';
import { Socks4Handshake } from './socks4.js';
import { Socks5Handshake } from './socks5.js';
import { sniff, type Fronts } from './sniff.js';
import { serveSocks } from './socks-session.js';
import type { Connector } from '../net/connector.js';
import { HANDSHAKE_TIMEOUT_MS } from '../net/timeouts.js';

const debug = debuglog('kubesocks:proxy');

export interface ProxyServerOptions {
  /** Opens streams to targets. The proxy knows nothing else about where they go. */
  connector: Connector;
  /**
   * Credentials every client must present (SOCKS5 username/password, HTTP
   * `Proxy-Authorization: Basic`; SOCKS4 is then refused). Required to
   * listen on a non-loopback address.
   */
  auth?: Credentials | undefined;
  /** How long a client has to complete its handshake (SOCKS request, HTTP request headers). Default 10 000 ms. */
  handshakeTimeoutMs?: number | undefined;
  /** Cap on the size of HTTP request headers; larger gets 431. Default 16 KiB. */
  maxHeaderBytes?: number | undefined;
  /** Cap on connections still in their handshake; new ones beyond it are closed at once. Default 512. */
  maxHandshakes?: number | undefined;
  /** Called once per proxied connection or forwarded request, and for failed handshakes (the `-v` log). */
  onConnection?: ((record: ConnectionRecord) => void) | undefined;
  /** Called for failures of the proxy itself: LISTEN_FAILED (accept failing, e.g. EMFILE), INTERNAL (a bug caught in a handler or thrown by onConnection). */
  onError?: ((err: KubesocksError) => void) | undefined;
  /**
   * Records what the proxy does, for `/`, `/status.json` and `/metrics`.
   * Pass the dialer's (`dialer.observer`) so the pages show the cluster side
   * too. Default: one of its own.
   */
  observer?: Observer | undefined;
}

export interface ProxyServer {
  /**
   * Starts listening. Port 0 picks a free port; the result has the real one.
   * Rejects when `host` is not a loopback address and no `auth` is set.
   */
  listen(host: string, port: number): Promise<{ host: string; port: number }>;
  /**
   * Stops accepting, closes idle connections, lets open ones finish for
   * `graceMs` (default 0), then destroys the rest. Resolves when all are closed.
   */
  close(graceMs?: number): Promise<void>;
  /** A snapshot of the counters. */
  stats(): ProxyStats;
}

export type { ConnectionRecord, ProxyStats } from './client-connection.js';

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = HANDSHAKE_TIMEOUT_MS;
export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;
export const DEFAULT_MAX_HANDSHAKES = 512;

export function createProxyServer(options: ProxyServerOptions): ProxyServer {
  if (typeof options?.connector?.connect !== 'function' || typeof options.connector.pacInfo !== 'function') {
    throw new TypeError('Expected the `connector` option to have connect() and pacInfo() methods');
  }
  if (options.auth !== undefined) validateCredentials(options.auth);
  const handshakeTimeoutMs = positiveInteger('handshakeTimeoutMs', options.handshakeTimeoutMs, DEFAULT_HANDSHAKE_TIMEOUT_MS);
  const maxHeaderBytes = positiveInteger('maxHeaderBytes', options.maxHeaderBytes, DEFAULT_MAX_HEADER_BYTES);
  const maxHandshakes = positiveInteger('maxHandshakes', options.maxHandshakes, DEFAULT_MAX_HANDSHAKES);
  const checker = options.auth ? new CredentialChecker(options.auth) : undefined;
  const { onConnection, onError } = options;
  const observer = options.observer ?? new Observer();

  const stats: ProxyStats = { openSockets: 0, handshakes: 0, accepted: 0, rejected: 0, handshakeTimeouts: 0 };
  let closing = false;
  const connections = new Set<ClientConnection>();
  /** Waiters for the moment no client socket is open (net.Server's close fires a little earlier). */
  const onDrained: Array<() => void> = [];

  const reportError = (err: KubesocksError): void => {
    debug('error: %s %s', err.code, err.message);
    if (!onError) return;
    try {
      onError(err);
    } catch (thrown) {
      debug('onError threw: %s', (thrown as Error)?.message);
    }
  };

  const ctx: ProxyContext = {
    connector: options.connector,
    checker,
    handshakeTimeoutMs,
    maxHeaderBytes,
    stats,
    observer,
    get closing() {
      return closing;
    },
    report(record) {
      observer.ended(record);
      if (!onConnection) return;
      try {
        onConnection(record);
      } catch (err) {
        reportError(asKubesocksError(err, 'INTERNAL'));
      }
    },
    reportError,
  };

  const httpFront = new HttpFront(ctx);
  const fronts: Fronts = {
    socks5: (conn, first) => serveSocks(conn, new Socks5Handshake({ checker }), first),
    socks4: (conn, first) => serveSocks(conn, new Socks4Handshake({ requireCredentials: checker !== undefined }), first),
    http: (conn, first) => httpFront.accept(conn, first),
  };

  // allowHalfOpen: a client's FIN must only end the way to the destination (see relay.ts).
  const server: Server = createServer({ allowHalfOpen: true, noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 });

  server.on('connection', (socket: Socket) => {
    if (closing) {
      socket.destroy();
      return;
    }
    if (stats.handshakes >= maxHandshakes) {
      stats.rejected++;
      debug('rejecting %s: %d handshakes in flight', socket.remoteAddress, stats.handshakes);
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    const conn = new ClientConnection(socket, ctx);
    connections.add(conn);
    socket.once('close', () => {
      connections.delete(conn);
      if (connections.size === 0) for (const drained of onDrained.splice(0)) drained();
    });
    sniff(conn, fronts);
  });

  let listening = false;
  let closed: Promise<void> | undefined;

  return {
    listen(host, port) {
      const refusal = openListenerRefusal(host, checker !== undefined);
      if (refusal) {
        return Promise.reject(new KubesocksError('FORBIDDEN', `${refusal}: a proxy other machines can reach must require a username and password`));
      }
      if (closed) return Promise.reject(new KubesocksError('CLOSED', 'the proxy server is closed'));
      if (listening) return Promise.reject(new KubesocksError('LISTEN_FAILED', 'the proxy server is already listening'));
      listening = true;
      return new Promise((resolve, reject) => {
        const onListenError = (err: Error): void => {
          listening = false;
          reject(err);
        };
        server.once('error', onListenError);
        try {
          server.listen({ host, port }, onListening);
        } catch (err) {
          // Bad arguments (a port out of range) throw synchronously.
          server.off('error', onListenError);
          onListenError(err as Error);
        }
        function onListening(): void {
          server.off('error', onListenError);
          // Later listener errors (accept failing, e.g. EMFILE) do not stop the proxy; report them.
          server.on('error', (err) => reportError(asKubesocksError(err, 'LISTEN_FAILED')));
          const address = server.address();
          if (address === null || typeof address === 'string') {
            reject(new KubesocksError('LISTEN_FAILED', 'the proxy listener has no TCP address'));
            return;
          }
          debug('listening on %s:%d', address.address, address.port);
          resolve({ host: address.address, port: address.port });
        }
      });
    },

    close(graceMs = 0) {
      if (closed) return closed;
      if (!Number.isFinite(graceMs) || graceMs < 0) {
        return Promise.reject(new TypeError(`Expected \`graceMs\` to be a non-negative number, got ${String(graceMs)}`));
      }
      closing = true;
      closed = new Promise<void>((resolve) => {
        const listenerClosed = new Promise<void>((done) => {
          if (!server.listening) done();
          else server.close(() => done());
        });
        const drained = new Promise<void>((done) => {
          if (connections.size === 0) done();
          else onDrained.push(done);
        });
        const all = Promise.all([listenerClosed, drained]);
        for (const conn of connections) if (conn.handshaking) conn.socket.destroy();
        httpFront.closeIdle();
        // What is still open after the grace period is cut midway: a reset,
        // never a FIN a client could take for the end of its data.
        const destroyAll = (): void => {
          for (const conn of connections) if (!conn.socket.destroyed) conn.socket.resetAndDestroy();
        };
        const timer = graceMs > 0 ? setTimeout(destroyAll, graceMs) : undefined;
        if (!timer) destroyAll();
        void all.then(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return closed;
    },

    stats() {
      return { ...stats };
    },
  };
}
