/**
 * One upgraded SPDY connection to one pod, shared by many proxied sockets:
 * each socket is a new request id with its own error + data stream pair.
 */
import type { Duplex } from 'node:stream';
import { KubesocksError } from '../errors.js';
import { ReadBudget } from '../spdy/read-budget.js';
import { SpdySession } from '../spdy/session.js';
import { PortForwardStream } from './pair.js';

export interface PodConnectionOptions {
  /** PING interval (client-go: 5 s). */
  pingIntervalMs: number;
  /** A PING unanswered this long ends the connection. */
  pingTimeoutMs: number;
  /** See PortForwardStream: silence after the kubelet's reply that counts as connected. */
  confirmMs: number;
  /** Unread bytes one socket may hold before its connection stops reading (stalling the others on it). */
  streamBufferBytes: number;
  /** The cap on unread bytes over all sockets (default: the process-wide one). */
  readBudget?: ReadBudget | undefined;
}

/**
 * Per-socket buffer before a paused client stalls its siblings, and the cap
 * over all sockets of the process. Chosen by the paused-reader fault case
 * (test/faults/paused-reader.test.ts, docs/faults.md): 4 MiB lets a reader
 * pause for a moment at hundreds of MiB/s, or for seconds at browser speeds,
 * without stopping the connection; 64 MiB bounds the worst case when many
 * readers pause at once.
 */
export const DEFAULT_STREAM_BUFFER_BYTES = 4 * 1024 * 1024;
export const PROCESS_READ_BUDGET = new ReadBudget(64 * 1024 * 1024);

export class PodConnection {
  readonly namespace: string;
  readonly pod: string;
  readonly session: SpdySession;
  /** When the upgrade completed (epoch ms), for the status page's age column. */
  readonly openedAt = Date.now();
  readonly #confirmMs: number;
  #nextRequestId = 0;
  #pairs = 0;
  #retired = false;
  /** Set when retired with pairs still open: the reason the last one's close ends the connection with. */
  #retireReason: KubesocksError | undefined;

  constructor(socket: Duplex, namespace: string, pod: string, options: PodConnectionOptions) {
    this.namespace = namespace;
    this.pod = pod;
    this.#confirmMs = options.confirmMs;
    this.session = new SpdySession(socket, {
      role: 'client',
      pingIntervalMs: options.pingIntervalMs,
      pingTimeoutMs: options.pingTimeoutMs,
      streamBufferBytes: options.streamBufferBytes,
      readBudget: options.readBudget ?? PROCESS_READ_BUDGET,
    });
  }

  /** Stream pairs open on this connection. */
  get pairs(): number {
    return this.#pairs;
  }

  /** Takes new pairs: open, and not retired. */
  get usable(): boolean {
    return !this.#retired && this.session.canOpenStream;
  }

  /**
   * Takes no new pairs from now on and closes once its last pair ends. For
   * when the API server stopped accepting the credentials this connection
   * was authenticated with: the sockets on it carry on (as they would with
   * kubectl), but no new socket rides on an authentication that no longer holds.
   */
  retire(reason: KubesocksError): void {
    this.#retired = true;
    if (this.#pairs === 0) this.close(reason);
    else this.#retireReason = reason;
  }

  /** A slow reader on this connection holds every stream on it back. */
  get stalled(): boolean {
    return this.session.readingPaused;
  }

  /**
   * Opens a stream pair to `port` in the pod. Both SYN_STREAMs go out at once
   * (the kubelet pairs them by request id in either order), which saves the
   * round trip client-go spends waiting for the error stream's reply.
   */
  open(port: number): PortForwardStream {
    if (!this.usable) throw new KubesocksError('CONNECTION_LOST', `the connection to pod ${this.namespace}/${this.pod} is closed`);
    const requestId = this.#nextRequestId++;
    const headers = { port: String(port), requestid: String(requestId) };
    const errorStream = this.session.openStream({ streamtype: 'error', ...headers });
    const dataStream = this.session.openStream({ streamtype: 'data', ...headers });
    const pair = new PortForwardStream(errorStream, dataStream, { namespace: this.namespace, pod: this.pod, port, requestId }, this.#confirmMs);
    this.#pairs++;
    pair.once('close', () => {
      if (--this.#pairs === 0 && this.#retireReason) this.close(this.#retireReason);
    });
    return pair;
  }

  close(error?: KubesocksError): void {
    this.session.close(error);
  }
}
