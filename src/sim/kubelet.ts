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

  constructor(
    readonly target: PortForwardTarget,
    socket: Duplex,
    private readonly options: SimKubeletOptions,
  ) {
    this.session = new SpdySession(socket, { role: 'server' });
    this.session.on('stream', (stream) => this.#onStream(stream));
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
    const fail = (reason: string): void => {
      debug('port-forward %s/%s:%d failed: %s', target.namespace, target.name, port, reason);
      if (!errorStream.destroyed) errorStream.write(`error forwarding port ${port} to pod ${target.name}, uid ${target.uid}: ${reason}`);
      // Since Kubernetes 1.32 both streams are reset after a failure.
      errorStream.reset();
      dataStream.reset();
    };
    const address = await options.backendFor(target, port).catch(() => null);
    if (dataStream.destroyed || this.session.closed) return;
    if (!address) {
      fail(this.#refusedText(port, 'connection refused'));
      return;
    }
    const conn = net.connect(address.port, address.host);
    conn.setNoDelay(true);
    this.#active.add(conn);
    conn.once('close', () => this.#active.delete(conn));
    let connected = false;
    conn.once('error', (error: NodeJS.ErrnoException) => {
      if (!connected) fail(this.#refusedText(port, error.code === 'ECONNREFUSED' ? 'connection refused' : error.message));
      else fail(`error copying from local connection to remote stream: read tcp4 127.0.0.1:${port}: ${error.message}`);
      conn.destroy();
    });
    conn.once('connect', () => {
      connected = true;
      options.counters.pairs++;
      this.#copy(conn, errorStream, dataStream);
    });
    dataStream.once('close', () => conn.destroy());
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
      if (!dataStream.destroyed) dataStream.end();
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

  #refusedText(port: number, cause: string): string {
    const ns = `/var/run/netns/cni-${this.#sandboxId.slice(0, 8)}-${this.#sandboxId.slice(8, 12)}`;
    return (
      `failed to execute portforward in network namespace "${ns}": failed to connect to localhost:${port} ` +
      `inside namespace "${this.#sandboxId}", IPv4: dial tcp4 127.0.0.1:${port}: connect: ${cause} ` +
      `IPv6 dial tcp6 [::1]:${port}: connect: ${cause} `
    );
  }
}

export class SimKubelet implements PortForwardHandler {
  readonly #connections = new Set<PortForwardConnection>();

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

  /** The pod's sandbox is gone: close all its port-forward connections. */
  closePod(uid: string): void {
    for (const connection of this.#connections) if (connection.target.uid === uid) connection.close();
  }

  /** Close every port-forward connection. */
  close(): void {
    for (const connection of this.#connections) connection.close();
  }
}
