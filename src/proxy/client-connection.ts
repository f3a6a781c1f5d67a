/**
 * One accepted client socket and everything the fronts need to serve it:
 * the handshake deadline, the AbortSignal handed to the Connector, the
 * bookkeeping behind `stats()`, and the records for the connection log.
 *
 * Fronts (SOCKS, HTTP) use it; they never touch the server's counters.
 */
import type { Socket } from 'node:net';
import { debuglog } from 'node:util';
import { asKubesocksError, KubesocksError, type ErrorCode } from '../errors.js';
import { formatHostPort, unmapIPv4 } from '../net/address.js';
import type { Observer } from '../observe/observer.js';
import type { CredentialChecker } from './auth.js';
import type { WrongCredentials } from './wrong-credentials.js';
import type { Connected, Connector, ProxyTarget } from '../net/connector.js';

const debug = debuglog('kubesocks:proxy');

/**
 * The abort reason once a client socket closes. One shared instance: every
 * connection closes, and building a fresh error (and its stack trace) for
 * each showed up in the per-connection CPU profile.
 */
const CLIENT_CLOSED = new KubesocksError('CLOSED', 'the client closed the connection');

/** Which front served a connection (`unknown`: it never sent a first byte). */
export type ProxyProtocol = 'socks5' | 'socks4' | 'http-connect' | 'http' | 'unknown';

/** One line of the connection log: a SOCKS or CONNECT tunnel, or one forwarded HTTP request. */
export interface ConnectionRecord {
  protocol: ProxyProtocol;
  /** The client's address, `127.0.0.1:52144`. */
  client: string;
  /** What the client asked for (`web.demo:80`); null when it never got that far; a path for requests to the proxy itself. */
  target: string | null;
  /** Where the bytes went, as the Connector put it (`demo/web-0:8080`); `proxy` for /proxy.pac (/healthz is not logged). */
  via: string | null;
  /** Client → destination bytes (for forwarded HTTP requests: body bytes). */
  bytesUp: number;
  /** Destination → client bytes (for forwarded HTTP requests: body bytes). */
  bytesDown: number;
  durationMs: number;
  /** Why it failed; absent when it ended normally (a client closing early is normal). */
  error?: { code: ErrorCode; message: string };
}

/** Counters behind `ProxyServer.stats()`. */
export interface ProxyStats {
  /** Client sockets being served now (not counting `waiting`). */
  openSockets: number;
  /** Client sockets still in their handshake (no complete request yet), read now. */
  handshakes: number;
  /** Client sockets accepted and waiting to be read (`maxHandshakes` are in flight). */
  waiting: number;
  /** Client sockets admitted (read) since start. */
  accepted: number;
  /** Client sockets closed because they sent nothing while others waited for a handshake slot. */
  evicted: number;
  /** Client sockets closed because the handshake took longer than `handshakeTimeoutMs`. */
  handshakeTimeouts: number;
  /** accept() failures of the listener (EMFILE: the process is out of file descriptors). */
  acceptErrors: number;
  /** Client sockets closed as soon as accepted to keep file descriptors for the process's own connections (descriptor-budget.ts). */
  dropped: number;
}

/** What the server shares with every connection. */
export interface ProxyContext {
  readonly connector: Connector;
  readonly checker: CredentialChecker | undefined;
  /** Answers wrong credentials, slowed per client address (wrong-credentials.ts). */
  readonly wrongCredentials: WrongCredentials;
  readonly handshakeTimeoutMs: number;
  readonly maxHeaderBytes: number;
  readonly stats: ProxyStats;
  /** Where connections, failures and connect times are recorded (the status page and /metrics read it). */
  readonly observer: Observer;
  /** True once `close()` was called: fronts stop keeping connections alive. */
  readonly closing: boolean;
  report(record: ConnectionRecord): void;
  reportError(err: KubesocksError): void;
}

/** How long a failed handshake's socket stays open for the client to read the reply. */
const LINGER_MS = 1000;
/** How much a client may send while its target is being connected before it is paused. */
const HOLD_LIMIT_BYTES = 64 * 1024;

export interface Held {
  /** Stops holding; returns what the client sent meanwhile (to be written to the destination first). */
  release(): Buffer;
}

export class ClientConnection {
  readonly socket: Socket;
  /** `ip:port` of the client, fixed at accept time (a destroyed socket forgets it). */
  readonly client: string;
  readonly acceptedAt = Date.now();
  protocol: ProxyProtocol = 'unknown';
  readonly #ctx: ProxyContext;
  readonly #abort = new AbortController();
  readonly #onHandshakeEnd: () => void;
  #handshaking = true;
  #timer: NodeJS.Timeout | undefined;

  /** `onHandshakeEnd` runs once, when the handshake completes or the socket closes (it frees a slot). */
  constructor(socket: Socket, ctx: ProxyContext, onHandshakeEnd: () => void = () => {}) {
    this.socket = socket;
    this.#ctx = ctx;
    this.#onHandshakeEnd = onHandshakeEnd;
    this.client = formatHostPort(unmapIPv4(socket.remoteAddress ?? '?'), socket.remotePort ?? 0);
    ctx.stats.accepted++;
    ctx.stats.openSockets++;
    // Every socket gets an 'error' listener: a reset client must never crash the process.
    socket.on('error', (err) => debug('%s socket error: %s', this.client, err.message));
    socket.once('close', () => {
      this.endHandshake();
      ctx.stats.openSockets--;
      this.#abort.abort(CLIENT_CLOSED);
    });
    this.#timer = setTimeout(() => this.#handshakeTimedOut(), ctx.handshakeTimeoutMs);
    this.#timer.unref();
  }

  get ctx(): ProxyContext {
    return this.#ctx;
  }

  /** Aborted when the client goes away; handed to the Connector. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  get handshaking(): boolean {
    return this.#handshaking;
  }

  /** The client sent a complete request: the handshake deadline no longer applies. Idempotent. */
  endHandshake(): void {
    if (!this.#handshaking) return;
    this.#handshaking = false;
    clearTimeout(this.#timer);
    this.#onHandshakeEnd();
  }

  #handshakeTimedOut(): void {
    if (!this.#handshaking || this.socket.destroyed) return;
    this.#ctx.stats.handshakeTimeouts++;
    this.report({
      target: null,
      error: new KubesocksError('TIMEOUT', `no complete ${this.protocol === 'unknown' ? '' : `${this.protocol} `}handshake within ${this.#ctx.handshakeTimeoutMs} ms`),
    });
    this.socket.destroy();
  }

  /**
   * Asks the Connector for a stream. If the client leaves while the Connector
   * works, its signal is aborted; a stream that arrives anyway is destroyed.
   * Always rejects with a KubesocksError. `signal` defaults to the socket's;
   * a front serving many requests per socket passes one per request, so that
   * listeners a Connector adds do not pile up on the socket's signal.
   */
  async open(target: ProxyTarget, signal: AbortSignal = this.signal): Promise<Connected> {
    if (signal.aborted) throw new KubesocksError('CLOSED', 'the client closed the connection');
    let connected: Connected;
    const started = performance.now();
    try {
      connected = await this.#ctx.connector.connect(target, signal);
      this.#ctx.observer.connectTimed((performance.now() - started) / 1000, true);
    } catch (err) {
      this.#ctx.observer.connectTimed((performance.now() - started) / 1000, false);
      if (signal.aborted) throw new KubesocksError('CLOSED', 'the client closed the connection while its target was being connected', { cause: err });
      throw asKubesocksError(err, 'CONNECTION_LOST');
    }
    // Like every client socket, every destination stream gets an 'error'
    // listener at once: until the front attaches its own (Node's HTTP client
    // does so a tick later), an error must not crash the process.
    connected.stream.on('error', (err) => debug('%s stream error: %s', this.client, err.message));
    if (signal.aborted) {
      connected.stream.destroy();
      throw new KubesocksError('CLOSED', 'the client closed the connection while its target was being connected');
    }
    return connected;
  }

  /**
   * While the Connector works, keeps what the client sends (clients may send
   * their first bytes before the reply) and notices when it leaves. A client
   * that half-closes without having sent a byte is taken as gone — a real
   * client waits for the reply — so the Connector's attempt is abandoned.
   */
  hold(initial: Buffer): Held {
    const { socket } = this;
    const chunks: Buffer[] = initial.length > 0 ? [initial] : [];
    let size = initial.length;
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= HOLD_LIMIT_BYTES) socket.pause();
    };
    const onEnd = (): void => {
      if (size === 0) socket.destroy();
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    if (size < HOLD_LIMIT_BYTES) socket.resume();
    return {
      release: () => {
        socket.pause();
        socket.off('data', onData);
        socket.off('end', onEnd);
        return chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks);
      },
    };
  }

  /**
   * Sends a last message and closes. The client gets a moment to read it:
   * what it still sends is drained and ignored, so the close is not a reset
   * that could discard the reply (RFC 1928 §6: close within 10 s).
   */
  endWith(reply: Buffer | string | null): void {
    const { socket } = this;
    this.endHandshake();
    if (socket.destroyed) return;
    if (reply !== null && socket.writable) socket.end(reply);
    else socket.end();
    socket.resume();
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  }

  /** Emits one record; `startedAt` defaults to when the socket was accepted. */
  report(r: {
    protocol?: ProxyProtocol;
    target: string | null;
    via?: string | null;
    bytesUp?: number;
    bytesDown?: number;
    startedAt?: number;
    error?: KubesocksError | undefined;
  }): void {
    const record: ConnectionRecord = {
      protocol: r.protocol ?? this.protocol,
      client: this.client,
      target: r.target,
      via: r.via ?? null,
      bytesUp: r.bytesUp ?? 0,
      bytesDown: r.bytesDown ?? 0,
      durationMs: Date.now() - (r.startedAt ?? this.acceptedAt),
    };
    if (r.error) record.error = { code: r.error.code, message: r.error.message };
    this.#ctx.report(record);
  }

  /**
   * Wraps an event handler so that a bug in it closes this one connection
   * and is reported, instead of throwing out of an event emitter and taking
   * the process down.
   */
  guard<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
    return (...args: A) => {
      try {
        fn(...args);
      } catch (err) {
        this.#ctx.reportError(asKubesocksError(err, 'INTERNAL'));
        this.socket.destroy();
      }
    };
  }
}
