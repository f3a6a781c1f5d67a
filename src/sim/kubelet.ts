/**
 * The kubelet and container runtime side of port-forward, as the simulated
 * cluster's nodes run it: kubelet `cri/streaming/portforward` (httpstream.go)
 * pairing streams by request id, and containerd's port forward dialling
 * "localhost:PORT inside the pod" and copying both ways, all over
 * moby/spdystream (our SpdySession in server role reproduces its framing).
 */
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import { SpdySession } from '../spdy/session.js';
import type { SpdyStream } from '../spdy/stream.js';
import { DEFAULT_RUNTIME_PROFILE, errorForwardingText, failPair, refusedReason, type RuntimeProfile } from './runtime-profile.js';
import type { WebSocket } from 'ws';
import { ChannelConnection } from './kubelet-websocket.js';
import type { PortForwardHandler, PortForwardTarget, SimCounters } from './types.js';

const debug = debuglog('kubesocks:sim');

export interface BackendAddress {
  host: string;
  port: number;
}

export interface SimKubeletOptions {
  /** Where "localhost:PORT inside the pod" really is; null → nothing listens (the dial is refused). */
  backendFor(target: PortForwardTarget, port: number): Promise<BackendAddress | null>;
  /** Counters to update (shared with the API server's). */
  counters: SimCounters;
  /** How long a lone stream waits for its partner (kubelet: 30 s, the stream creation timeout). */
  streamPairTimeoutMs?: number;
  /** How a failed pair ends on the wire (see runtime-profile.ts). Read for every pair, so it may change at run time. */
  runtime?(): RuntimeProfile;
}

/** containerd: after one copy direction ends, the other gets this long before the pod socket closes. */
const HALF_CLOSE_GRACE_MS = 1000;

interface StreamPair {
  requestId: string;
  error?: SpdyStream;
  data?: SpdyStream;
  timer: NodeJS.Timeout;
}

/** One upgraded port-forward connection (kubelet's httpStreamHandler). */
class PortForwardConnection {
  readonly session: SpdySession;
  readonly #pairs = new Map<string, StreamPair>();
  readonly #pointer = `0x${randomBytes(5).toString('hex')}`;
  readonly #sandboxId = randomBytes(32).toString('hex');
  readonly #active = new Set<net.Socket>();
  /** Pairs copying bytes, each with how to fail it midway (for a sandbox that goes away). */
  readonly #copying = new Set<(reason: string) => void>();
  /** Pairs copying bytes, with how to reset them (RST_STREAM both, no text). */
  readonly #resettable = new Set<() => void>();
  readonly #socket: Duplex;
  /** The sandbox is gone: pairs that arrive until the connection closes find no network namespace. */
  #gone = false;

  constructor(
    readonly target: PortForwardTarget,
    socket: Duplex,
    private readonly options: SimKubeletOptions,
  ) {
    this.#socket = socket;
    this.session = new SpdySession(socket, { role: 'server' });
    this.session.on('stream', (stream) => this.#onStream(stream));
  }

  /**
   * The pod's sandbox is going away: every pair still copying fails the way
   * the runtime fails a copy whose pod socket was reset (text, then the
   * profile's ending), and then the connection closes at once. The frames
   * are handed to the socket before it closes.
   */
  podGone(): void {
    this.#gone = true;
    this.breakCopies();
    this.session.flush();
    this.close();
  }

  /** Fails every pair still copying as a broken pod socket does (text, then the profile's ending); the connection stays. */
  breakCopies(): void {
    for (const fail of [...this.#copying]) fail('error copying from remote stream to local connection: read: connection reset by peer');
  }

  /** Resets both streams of every pair still copying, without a word on the error stream. */
  resetCopies(): void {
    for (const reset of [...this.#resettable]) reset();
  }

  /**
   * The connection goes silent both ways, as behind a frozen node or a
   * dropped network path: nothing more is read (PINGs go unanswered) and
   * nothing written leaves (an extra cork that is never undone; the
   * session's own cork/uncork pairs nest inside it).
   */
  freeze(): void {
    this.#socket.pause();
    this.#socket.cork();
  }

  close(): void {
    for (const conn of this.#active) conn.destroy();
    for (const pair of this.#pairs.values()) clearTimeout(pair.timer);
    this.#pairs.clear();
    this.session.close();
  }

  /** apimachinery's spdy newStreamHandler + kubelet's httpStreamReceived: validate, then reply at once. */
  #onStream(stream: SpdyStream): void {
    stream.on('error', () => {});
    const portHeader = stream.headers['port'] ?? '';
    const port = /^\d+$/.test(portHeader) ? Number(portHeader) : NaN;
    const streamType = stream.headers['streamtype'] ?? '';
    if (!(port >= 1 && port <= 65535) || (streamType !== 'error' && streamType !== 'data')) {
      stream.reset();
      return;
    }
    this.options.counters.streams++;
    stream.reply({});

    // Older clients sent no requestid; the kubelet then derives one from the
    // stream id: the error stream's own id, the data stream's id minus 2.
    const requestId = stream.headers['requestid'] || String(streamType === 'error' ? stream.id : stream.id - 2);
    let pair = this.#pairs.get(requestId);
    if (!pair) {
      const created: StreamPair = {
        requestId,
        timer: setTimeout(() => this.#timeOut(created), this.options.streamPairTimeoutMs ?? 30_000),
      };
      created.timer.unref();
      pair = created;
      this.#pairs.set(requestId, pair);
    }
    if (pair[streamType]) {
      const message = `error processing stream for request ${requestId}: ${streamType} stream already assigned`;
      pair.error?.write(message);
      stream.reset();
      return;
    }
    pair[streamType] = stream;
    if (streamType === 'error') stream.resume(); // the client half-closes it at once; drain to see that
    if (pair.error && pair.data) {
      clearTimeout(pair.timer);
      this.#pairs.delete(requestId);
      void this.#forward(pair.error, pair.data, port);
    }
  }

  #timeOut(pair: StreamPair): void {
    if (this.#pairs.get(pair.requestId) !== pair) return;
    this.#pairs.delete(pair.requestId);
    pair.error?.end(`(conn=&{${this.#pointer}}, request=${pair.requestId}) timed out waiting for streams`);
    pair.data?.reset();
  }

  /** containerd's portForward: dial localhost:port in the pod's netns, copy both ways. */
  async #forward(errorStream: SpdyStream, dataStream: SpdyStream, port: number): Promise<void> {
    const { target, options } = this;
    const profile = options.runtime?.() ?? DEFAULT_RUNTIME_PROFILE;
    let failed = false;
    let conn: net.Socket | undefined;
    const fail = (reason: string): void => {
      if (failed) return;
      failed = true;
      this.#copying.delete(fail);
      if (conn) {
        // Nothing more is copied once the runtime gave up on the pair.
        conn.unpipe(dataStream);
        dataStream.unpipe(conn);
        conn.destroy();
      }
      debug('port-forward %s/%s:%d failed (%s): %s', target.namespace, target.name, port, profile, reason);
      failPair(profile, errorStream, dataStream, errorForwardingText(profile, port, { ...target, sandboxId: this.#sandboxId }, reason));
    };
    const address = await options.backendFor(target, port).catch(() => null);
    if (dataStream.destroyed || this.session.closed) return;
    if (this.#gone) {
      fail(`failed to execute portforward in network namespace: network namespace for sandbox "${this.#sandboxId}" is closed`);
      return;
    }
    if (!address) {
      fail(refusedReason(profile, port, this.#sandboxId, 'connection refused'));
      return;
    }
    const socket = net.connect(address.port, address.host);
    conn = socket;
    socket.setNoDelay(true);
    this.#active.add(socket);
    socket.once('close', () => this.#active.delete(socket));
    let connected = false;
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (!connected) fail(refusedReason(profile, port, this.#sandboxId, error.code === 'ECONNREFUSED' ? 'connection refused' : error.message));
      else fail(`error copying from local connection to remote stream: read tcp4 127.0.0.1:${port}: ${error.message}`);
      socket.destroy();
    });
    socket.once('connect', () => {
      connected = true;
      options.counters.pairs++;
      this.#copying.add(fail);
      this.#resettable.add(reset);
      // Once the pod's side ended, nothing is left to copy from it: a
      // sandbox going away can no longer break this pair with a read error.
      socket.once('end', () => this.#copying.delete(fail));
      this.#copy(socket, errorStream, dataStream);
    });
    const reset = (): void => {
      this.#copying.delete(fail);
      this.#resettable.delete(reset);
      socket.destroy();
      errorStream.reset();
      dataStream.reset();
    };
    dataStream.once('close', () => {
      this.#copying.delete(fail);
      this.#resettable.delete(reset);
      socket.destroy();
    });
  }

  #copy(conn: net.Socket, errorStream: SpdyStream, dataStream: SpdyStream): void {
    const { counters } = this.options;
    dataStream.on('data', (chunk: Buffer) => (counters.bytesToPods += chunk.length));
    conn.on('data', (chunk: Buffer) => (counters.bytesFromPods += chunk.length));
    // Half-close is not passed on: the runtime never shuts down the pod
    // socket's write side; it waits for the other direction, then closes.
    dataStream.pipe(conn, { end: false });
    conn.pipe(dataStream, { end: false });
    let grace: NodeJS.Timeout | undefined;
    const finish = (): void => {
      clearTimeout(grace);
      conn.destroy();
      if (!dataStream.destroyed && !dataStream.writableEnded) dataStream.end();
      if (!errorStream.destroyed && !errorStream.writableEnded) errorStream.end();
    };
    const oneDirectionEnded = (): void => {
      if (grace) finish();
      else grace = setTimeout(finish, HALF_CLOSE_GRACE_MS);
    };
    dataStream.once('end', oneDirectionEnded);
    conn.once('end', oneDirectionEnded);
    // A data stream reset by the client ends the copy as well: the kubelet's
    // portForward() returns and its deferred Close() FINs the error stream.
    dataStream.once('close', finish);
  }
}

export class SimKubelet implements PortForwardHandler {
  readonly #connections = new Set<PortForwardConnection>();
  readonly #channelConnections = new Set<ChannelConnection>();

  constructor(readonly options: SimKubeletOptions) {}

  accept(target: PortForwardTarget, socket: Duplex, head: Buffer): void {
    if (head.length > 0) socket.unshift(head);
    const connection = new PortForwardConnection(target, socket, this.options);
    this.#connections.add(connection);
    this.options.counters.openConnections++;
    connection.session.once('close', () => {
      this.#connections.delete(connection);
      this.options.counters.openConnections--;
    });
  }

  acceptChannels(target: PortForwardTarget, ws: WebSocket, ports: number[], base64: boolean): void {
    const sandboxId = randomBytes(32).toString('hex');
    const connection = new ChannelConnection(target, ws, ports, base64, {
      backendFor: this.options.backendFor,
      counters: this.options.counters,
      refusedText: (port, cause) => refusedReason(this.options.runtime?.() ?? DEFAULT_RUNTIME_PROFILE, port, sandboxId, cause),
    });
    this.#channelConnections.add(connection);
    this.options.counters.openConnections++;
    connection.onClose = () => {
      this.#channelConnections.delete(connection);
      this.options.counters.openConnections--;
    };
  }

  /** The pod's sandbox is gone: close all its port-forward connections. */
  closePod(uid: string): void {
    for (const connection of this.#connections) if (connection.target.uid === uid) connection.podGone();
    for (const connection of this.#channelConnections) if (connection.target.uid === uid) connection.close();
  }

  /** Fails (`text`: error text and the profile's ending) or resets (`reset`: RST, no text) every pair of the pod still copying. */
  breakPod(uid: string, how: 'text' | 'reset'): void {
    for (const connection of this.#connections) {
      if (connection.target.uid !== uid) continue;
      if (how === 'text') connection.breakCopies();
      else connection.resetCopies();
    }
  }

  /** Stops reading every port-forward connection of the pod (PINGs unanswered). */
  freezePod(uid: string): void {
    for (const connection of this.#connections) if (connection.target.uid === uid) connection.freeze();
  }

  /** Close every port-forward connection. */
  close(): void {
    for (const connection of this.#connections) connection.close();
    for (const connection of this.#channelConnections) connection.close();
  }
}
