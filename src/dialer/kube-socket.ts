/**
 * The socket the dialer hands out: a Duplex that behaves enough like a
 * net.Socket for http.Agent and node-postgres (connect event, setNoDelay,
 * setKeepAlive, setTimeout, ref/unref), and that fails over.
 *
 * Failover: if the pod side fails before a single byte reached the caller
 * (the pod refused, its sandbox is gone, the kubelet timed out pairing), a
 * new attempt is opened — usually to another ready pod — and whatever the
 * caller wrote so far is replayed. Those failures mean the pod never saw the
 * bytes, so the replay cannot duplicate anything. After the first byte, or
 * once more than REPLAY_LIMIT bytes were written, failures are final.
 */
import { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import { KubesocksError, asKubesocksError, type ErrorCode } from '../errors.js';
import { confirmFin } from '../net/end-or-reset.js';
import type { Endpoint } from '../resolve/resolver.js';

const debug = debuglog('kubesocks:dialer');

/** Bytes kept for replay while no byte has come back. */
const REPLAY_LIMIT = 256 * 1024;

/** Failures that prove the pod never received the bytes. */
const REPLAYABLE: ReadonlySet<ErrorCode> = new Set(['POD_REFUSED', 'POD_GONE', 'TIMEOUT']);

/** Failures of the connection, replayable only if the kubelet never acknowledged the stream. */
const LOST: ReadonlySet<ErrorCode> = new Set(['CONNECTION_LOST', 'STREAM_RESET']);

export interface Attempt {
  stream: Duplex;
  /** For logs: `demo/web-0:8080` or `direct example.com:443`. */
  via: string;
  /** The pod port it goes to (absent for direct connections). */
  endpoint?: Endpoint;
  /** The kubeconfig context of that pod (several contexts may serve pods of the same name). */
  context?: string;
  /** Whether a failure of this attempt before the first byte may be retried elsewhere. */
  retryable: boolean;
  /**
   * Whether the far end ever acknowledged the attempt. A connection that
   * died before the kubelet answered the stream (a pooled connection the API
   * server had just dropped) most likely never delivered a byte either.
   */
  acknowledged?: () => boolean;
}

/** Opens an attempt; `previous` is the failure that made a new one necessary. */
export type AttemptOpener = (previous: { attempt: Attempt; error: KubesocksError } | undefined) => Promise<Attempt>;

export class KubeSocket extends Duplex {
  /** Where the bytes go, once connected. */
  via = '';
  /** Failovers this socket went through. */
  failovers = 0;
  connecting = true;
  readonly #open: AttemptOpener;
  readonly #maxFailovers: number;
  readonly #onFailover: (() => void) | undefined;
  #attempt: Attempt | undefined;
  #replay: Buffer[] | null = [];
  #replayBytes = 0;
  #ended = false;
  #bytesRead = 0;
  #bytesWritten = 0;
  /** A write or end that arrived while (re)connecting, done once attached. */
  #pendingWrite: { chunk: Buffer; callback: (error?: Error | null) => void } | undefined;
  #pendingFinal: ((error?: Error | null) => void) | undefined;
  /** Set at 'connect'; afterwards closing needs no "closed before it connected" error (its stack trace is not free). */
  #connected = false;
  #idleTimer: NodeJS.Timeout | undefined;
  #idleMs = 0;
  #ready: Promise<this>;

  constructor(open: AttemptOpener, options: { maxFailovers?: number; onFailover?: () => void } = {}) {
    super({ allowHalfOpen: true });
    this.#open = open;
    this.#maxFailovers = options.maxFailovers ?? 2;
    this.#onFailover = options.onFailover;
    this.#ready = new Promise<this>((resolve, reject) => {
      this.once('connect', () => {
        this.#connected = true;
        resolve(this);
      });
      this.once('close', () => {
        if (!this.#connected) reject(this.errored ?? new KubesocksError('CLOSED', 'the socket was closed before it connected'));
      });
    });
    this.#ready.catch(() => {});
    this.#start(undefined);
  }

  /** Resolves when connected; rejects with the reason it never did. */
  ready(): Promise<this> {
    return this.#ready;
  }

  /** The pod port it is connected to (undefined while connecting, and for direct connections). */
  /** The kubeconfig context of the pod it goes to (undefined for direct connections). */
  get context(): string | undefined {
    return this.#attempt?.context;
  }

  get endpoint(): Endpoint | undefined {
    return this.#attempt?.endpoint;
  }

  get bytesRead(): number {
    return this.#bytesRead;
  }

  get bytesWritten(): number {
    return this.#bytesWritten;
  }

  // net.Socket look-alikes used by http.Agent and node-postgres.
  /** node-postgres calls connect(port, host); the socket is already connecting. */
  connect(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  setTimeout(ms: number, callback?: () => void): this {
    this.#idleMs = ms;
    if (callback) this.once('timeout', callback);
    this.#touch();
    return this;
  }

  override _read(): void {
    this.#attempt?.stream.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#touch();
    this.#bytesWritten += chunk.length;
    if (this.#replay) {
      this.#replayBytes += chunk.length;
      if (this.#replayBytes > REPLAY_LIMIT) this.#replay = null;
      else this.#replay.push(chunk);
    }
    if (this.connecting) this.#pendingWrite = { chunk, callback };
    else this.#writeToAttempt(chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#ended = true;
    if (this.connecting) {
      this.#pendingFinal = callback;
      return;
    }
    this.#attempt!.stream.end();
    callback();
  }

  #writeToAttempt(chunk: Buffer, callback: (error?: Error | null) => void): void {
    // While a replay is still possible, a write error is not the caller's
    // problem: the failover replays the chunk elsewhere.
    this.#attempt!.stream.write(chunk, (error) => callback(error && this.#replay === null ? error : null));
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.#idleTimer);
    this.#attempt?.stream.destroy();
    callback(error);
  }

  #start(previous: { attempt: Attempt; error: KubesocksError } | undefined): void {
    this.connecting = true;
    this.#open(previous).then(
      (attempt) => this.#attach(attempt),
      (error: unknown) => this.destroy(previous && !(error instanceof KubesocksError) ? previous.error : asKubesocksError(error)),
    );
  }

  #attach(attempt: Attempt): void {
    if (this.destroyed) {
      attempt.stream.destroy();
      return;
    }
    const isReplay = this.#attempt !== undefined;
    this.#attempt = attempt;
    this.via = attempt.via;
    const { stream } = attempt;
    stream.on('data', (chunk: Buffer) => {
      if (this.#attempt !== attempt) return;
      this.#touch();
      this.#replay = null; // a byte reached the caller: from now on failures are final
      this.#bytesRead += chunk.length;
      if (!this.push(chunk)) stream.pause();
    });
    // A direct connection's 'end' may be a reset Node reports as an end
    // (end-or-reset.ts): only a confirmed FIN ends this socket cleanly.
    stream.once('end', () =>
      confirmFin(stream, () => {
        if (this.#attempt === attempt) this.push(null);
      }),
    );
    stream.on('error', (error) => this.#onAttemptError(attempt, asKubesocksError(error)));
    stream.once('close', () => {
      if (this.#attempt !== attempt || this.destroyed) return;
      // Closed after its remote end: nothing more can be delivered either way.
      if (this.readableEnded) this.destroy();
      // Closed before its end and without an error: bytes may be missing, so
      // the caller gets an error, never a socket that waits forever.
      else if (!stream.readableEnded && !stream.errored) {
        this.#onAttemptError(attempt, new KubesocksError('CLOSED', `${attempt.via}: the stream closed before its end`));
      }
    });
    this.connecting = false;
    const pendingWrite = this.#pendingWrite;
    this.#pendingWrite = undefined;
    if (isReplay) {
      // The replay already holds the pending chunk (it was recorded in _write).
      for (const chunk of this.#replay ?? []) stream.write(chunk);
      pendingWrite?.callback();
    } else {
      this.emit('connect');
      if (pendingWrite) this.#writeToAttempt(pendingWrite.chunk, pendingWrite.callback);
    }
    const pendingFinal = this.#pendingFinal;
    this.#pendingFinal = undefined;
    if (pendingFinal) {
      stream.end();
      pendingFinal();
    } else if (isReplay && this.#ended) {
      stream.end();
    }
  }

  #onAttemptError(attempt: Attempt, error: KubesocksError): void {
    if (this.#attempt !== attempt || this.destroyed) return;
    const neverAcknowledged = LOST.has(error.code) && attempt.acknowledged?.() === false;
    const canRetry =
      attempt.retryable && this.#replay !== null && (REPLAYABLE.has(error.code) || neverAcknowledged) && this.failovers < this.#maxFailovers;
    if (!canRetry) {
      this.destroy(error);
      return;
    }
    this.failovers++;
    this.#onFailover?.();
    debug('failover after %s: %s', attempt.via, error.message);
    // Retry after the I/O that came with this failure is handled: when the
    // API server drops every connection at once, the pool then already knows
    // the others are gone too, instead of handing out another dead one.
    setImmediate(() => {
      if (!this.destroyed) this.#start({ attempt, error });
    });
  }

  #touch(): void {
    if (this.#idleMs <= 0) return;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => this.emit('timeout'), this.#idleMs);
    this.#idleTimer.unref();
  }
}
