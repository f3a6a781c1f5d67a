/**
 * The proxy's one listener. Each connection goes to the front its first
 * byte names (sniff.ts). It owns the limits that protect the process: the
 * handshake deadline, the handshakes read at once (admission.ts: beyond them
 * sockets wait, and silent ones make room), the header size cap, the
 * file descriptors kept free for the process's own connections
 * (descriptor-budget.ts), the failures of accept() (EMFILE, accept-failures.ts),
 * and the refusal to serve other machines without credentials.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { debuglog } from 'node:util';
import { asKubesocksError, KubesocksError } from '../errors.js';
import { openListenerRefusal } from '../net/loopback.js';
import { positiveInteger } from '../net/options.js';
import { AcceptFailures } from './accept-failures.js';
import { DescriptorBudget } from './descriptor-budget.js';
import { Admission, type AdmissionTicket } from './admission.js';
import { CredentialChecker, validateCredentials, type Credentials } from './auth.js';
import { AuthThrottle } from './auth-throttle.js';
import { WrongCredentials } from './wrong-credentials.js';
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
  /**
   * Connections read at once while in their handshake. Connections beyond it
   * are accepted but not read until a slot frees (never closed for it).
   * Default 1024.
   */
  maxHandshakes?: number | undefined;
  /**
   * While connections wait for a slot, a connection that has sent nothing
   * for this long since it started being read is closed to make room, oldest
   * first. Default 500 ms.
   */
  silentGraceMs?: number | undefined;
  /** Called once per proxied connection or forwarded request, and for failed handshakes (the `-v` log). */
  onConnection?: ((record: ConnectionRecord) => void) | undefined;
  /**
   * Called for failures of the proxy itself: LISTEN_FAILED (accept failing,
   * e.g. EMFILE), OVERLOADED (new sockets closed at once to keep file
   * descriptors for the process's own connections, descriptor-budget.ts), each
   * told at most once per 10 s with a count; INTERNAL (a bug caught in a
   * handler or thrown by onConnection).
   */
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
export const DEFAULT_MAX_HANDSHAKES = 1024;
export const DEFAULT_SILENT_GRACE_MS = 500;
/**
 * Connections the kernel completes before the proxy accepts them. Node's
 * default, 511, overflows under a burst of a few thousand connects and
 * Linux then drops or resets the excess; Linux caps it at
 * net.core.somaxconn (4096 since 5.4).
 */
const ACCEPT_BACKLOG = 4096;

export function createProxyServer(options: ProxyServerOptions): ProxyServer {
  if (typeof options?.connector?.connect !== 'function' || typeof options.connector.pacInfo !== 'function') {
    throw new TypeError('Expected the `connector` option to have connect() and pacInfo() methods');
  }
  if (options.auth !== undefined) validateCredentials(options.auth);
  const handshakeTimeoutMs = positiveInteger('handshakeTimeoutMs', options.handshakeTimeoutMs, DEFAULT_HANDSHAKE_TIMEOUT_MS);
  const maxHeaderBytes = positiveInteger('maxHeaderBytes', options.maxHeaderBytes, DEFAULT_MAX_HEADER_BYTES);
  const maxHandshakes = positiveInteger('maxHandshakes', options.maxHandshakes, DEFAULT_MAX_HANDSHAKES);
  const silentGraceMs = positiveInteger('silentGraceMs', options.silentGraceMs, DEFAULT_SILENT_GRACE_MS);
  const checker = options.auth ? new CredentialChecker(options.auth) : undefined;
  const { onConnection, onError } = options;
  const observer = options.observer ?? new Observer();

  const stats: ProxyStats = { openSockets: 0, handshakes: 0, waiting: 0, accepted: 0, evicted: 0, handshakeTimeouts: 0, acceptErrors: 0, dropped: 0 };
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

  // A delayed answer to wrong credentials takes a handshake slot (admission, below).
  const wrongCredentials = new WrongCredentials(new AuthThrottle(), () => admission.hold());

  const ctx: ProxyContext = {
    connector: options.connector,
    checker,
    wrongCredentials,
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

  const byTicket = new WeakMap<AdmissionTicket, ClientConnection>();
  const admission = new Admission({
    maxHandshakes,
    silentGraceMs,
    admit(socket, ticket) {
      const conn = new ClientConnection(socket, ctx, () => admission.release(ticket));
      connections.add(conn);
      byTicket.set(ticket, conn);
      socket.once('close', () => {
        admission.release(ticket);
        connections.delete(conn);
        if (connections.size === 0 && admission.waiting === 0) for (const drained of onDrained.splice(0)) drained();
      });
      sniff(conn, fronts, () => admission.heard(ticket));
    },
    evict(ticket) {
      stats.evicted++;
      byTicket.get(ticket)?.report({
        target: null,
        error: new KubesocksError('OVERLOADED', `closed to make room: sent nothing for ${silentGraceMs} ms while ${maxHandshakes} handshakes were in flight and others waited`),
      });
      ticket.socket.destroy();
    },
  });

  const acceptFailures = new AcceptFailures(reportError);

  // allowHalfOpen: a client's FIN must only end the way to the destination (see relay.ts).
  // pauseOnConnect: a socket is read only once admitted (admission.ts).
  const server: Server = createServer({ allowHalfOpen: true, noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000, pauseOnConnect: true });

  const descriptors = DescriptorBudget.forThisProcess();

  server.on('connection', (socket: Socket) => {
    if (closing) {
      socket.destroy();
      return;
    }
    const verdict = descriptors?.accepted();
    if (descriptors && verdict?.admit === false) {
      stats.dropped++;
      acceptFailures.closedForShortage({ inUse: verdict.inUse, limit: descriptors.limit, reserve: descriptors.reserve });
      socket.destroy();
      return;
    }
    admission.offer(socket);
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
          server.listen({ host, port, backlog: ACCEPT_BACKLOG }, onListening);
        } catch (err) {
          // Bad arguments (a port out of range) throw synchronously.
          server.off('error', onListenError);
          onListenError(err as Error);
        }
        function onListening(): void {
          server.off('error', onListenError);
          // Later listener errors (accept failing, e.g. EMFILE) do not stop the proxy; report them, summarised.
          server.on('error', (err: NodeJS.ErrnoException) => {
            stats.acceptErrors++;
            acceptFailures.note(err);
          });
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
      admission.close();
      acceptFailures.close();
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
      return { ...stats, handshakes: admission.inFlight, waiting: admission.waiting };
    },
  };
}
