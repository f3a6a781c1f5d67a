/**
 * The kubelet's own WebSocket port-forward protocol, which
 * @kubernetes/client-node's `PortForward` and the Python client speak
 * (kubelet pkg/kubelet/cri/streaming/portforward/websocket.go over
 * apimachinery util/httpstream/wsstream):
 *
 *   GET …/pods/NAME/portforward?ports=8080[&ports=9090]   (kubelet: ?port=)
 *   Sec-WebSocket-Protocol: v4.channel.k8s.io | v4.base64.channel.k8s.io | none
 *
 * For port index i, channel 2i carries data both ways and channel 2i+1 the
 * kubelet's error text (server → client only). Every message is one channel
 * byte, then payload (base64: the channel as an ASCII digit, then base64).
 * The first message the server sends on each channel is the port as a
 * little-endian uint16. One TCP connection per port per WebSocket; no
 * half-close: the connection ends when every port's copy has ended.
 */
import type { IncomingMessage } from 'node:http';
import * as net from 'node:net';
import type { WebSocket } from 'ws';
import type { BackendAddress } from './kubelet.js';
import { StatusError, badRequest } from './status.js';
import type { PortForwardTarget, SimCounters, TunnelProtocol } from './types.js';

const BINARY = 'v4.channel.k8s.io';
const BASE64 = 'v4.base64.channel.k8s.io';

/** Bytes queued in the WebSocket before the pod socket is paused. */
const SEND_HIGH_WATER = 1024 * 1024;

/** NewV4Options: `port` values, each comma-separated, each 1…65535. */
export function parsePorts(values: string[]): number[] {
  if (values.length === 0) throw badRequest('query parameter "port" is required');
  const ports: number[] = [];
  for (const value of values) {
    if (value === '') throw badRequest('query parameter "port" cannot be empty');
    for (const text of value.split(',')) {
      const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
      if (!(port <= 65535)) throw badRequest(`unable to parse "${text}" as a port: strconv.ParseUint: parsing "${text}": invalid syntax`);
      if (port < 1) throw badRequest(`port "${text}" must be > 0`);
      ports.push(port);
    }
  }
  return ports;
}

/** wsstream's handshake: the first offered protocol the kubelet supports; none offered → binary, unnamed. */
export function channelProtocols(req: IncomingMessage): { selected: string; base64: boolean; counter: TunnelProtocol } {
  const offered = (req.headersDistinct['sec-websocket-protocol'] ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
  if (offered.length === 0) return { selected: '', base64: false, counter: 'channel' };
  const selected = offered.find((p) => p === BINARY || p === BASE64);
  if (!selected) {
    throw new StatusError(403, 'Forbidden', `requested protocol(s) are not supported: [${offered.join(' ')}]; supports [${BINARY} ${BASE64}]`);
  }
  return { selected, base64: selected === BASE64, counter: selected };
}

export interface ChannelServerOptions {
  backendFor(target: PortForwardTarget, port: number): Promise<BackendAddress | null>;
  counters: SimCounters;
  /** The runtime's text for a failed dial inside the pod. */
  refusedText(port: number, cause: string): string;
}

/** One accepted channel-protocol WebSocket and its pod connections. */
export class ChannelConnection {
  readonly #ws: WebSocket;
  readonly #ports: number[];
  readonly #base64: boolean;
  readonly #options: ChannelServerOptions;
  readonly #conns: Array<net.Socket | undefined>;
  /** Bytes the client sent on a port's data channel before its pod socket connected. */
  readonly #early: Buffer[][];
  #open: number;
  #closed = false;

  constructor(
    readonly target: PortForwardTarget,
    ws: WebSocket,
    ports: number[],
    base64: boolean,
    options: ChannelServerOptions,
  ) {
    this.#ws = ws;
    this.#ports = ports;
    this.#base64 = base64;
    this.#options = options;
    this.#conns = ports.map(() => undefined);
    this.#early = ports.map(() => []);
    this.#open = ports.length;
    ws.on('message', (data: Buffer, isBinary: boolean) => this.#onMessage(data, isBinary));
    ws.on('close', () => this.close());
    ws.on('error', () => this.close());
    ports.forEach((port, i) => {
      const prefix = Buffer.from([port & 0xff, port >> 8]);
      this.#send(2 * i, prefix);
      this.#send(2 * i + 1, prefix);
      options.counters.streams += 2;
      void this.#forward(i, port);
    });
  }

  /** Ends every pod socket and the WebSocket. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const conn of this.#conns) conn?.destroy();
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.close(1000);
    else this.#ws.terminate();
    this.onClose?.();
  }

  onClose: (() => void) | undefined;

  #send(channel: number, payload: Buffer, callback?: (error?: Error) => void): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    if (this.#base64) {
      this.#ws.send(String.fromCharCode(48 + channel) + payload.toString('base64'), { binary: false }, callback);
    } else {
      this.#ws.send(Buffer.concat([Buffer.from([channel]), payload]), { binary: true }, callback);
    }
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    let channel: number;
    let payload: Buffer;
    if (this.#base64) {
      const text = data.toString('latin1');
      channel = text.charCodeAt(0) - 48;
      payload = Buffer.from(text.slice(1), 'base64');
    } else {
      if (!isBinary || data.length === 0) return;
      channel = data[0]!;
      payload = data.subarray(1);
    }
    // Only data channels are writable by the client; anything else is dropped, as wsstream does for read-only channels.
    if (channel % 2 !== 0 || channel / 2 >= this.#ports.length || payload.length === 0) return;
    const index = channel / 2;
    this.#options.counters.bytesToPods += payload.length;
    const conn = this.#conns[index];
    if (!conn || conn.connecting) {
      this.#early[index]!.push(payload);
      return;
    }
    if (!conn.write(payload)) {
      this.#ws.pause();
      conn.once('drain', () => this.#ws.resume());
    }
  }

  /** containerd's port forward for one port: dial inside the pod, copy both ways. */
  async #forward(index: number, port: number): Promise<void> {
    const address = await this.#options.backendFor(this.target, port).catch(() => null);
    if (this.#closed) return;
    const fail = (reason: string): void => {
      this.#send(2 * index + 1, Buffer.from(`error forwarding port ${port} to pod ${this.target.name}, uid ${this.target.uid}: ${reason}`));
      this.#portDone();
    };
    if (!address) return fail(this.#options.refusedText(port, 'connection refused'));
    const conn = net.connect(address.port, address.host);
    conn.setNoDelay(true);
    this.#conns[index] = conn;
    let connected = false;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      conn.destroy();
      this.#portDone();
    };
    conn.once('error', (error: NodeJS.ErrnoException) => {
      if (connected) return finish();
      done = true;
      conn.destroy();
      fail(this.#options.refusedText(port, error.code === 'ECONNREFUSED' ? 'connection refused' : error.message));
    });
    conn.once('connect', () => {
      connected = true;
      this.#options.counters.pairs++;
      for (const chunk of this.#early[index]!.splice(0)) conn.write(chunk);
    });
    conn.on('data', (chunk: Buffer) => {
      this.#options.counters.bytesFromPods += chunk.length;
      // Past the high-water mark, the pod socket waits until this message has gone out.
      const full = this.#ws.bufferedAmount + chunk.length > SEND_HIGH_WATER;
      this.#send(2 * index, chunk, full ? () => conn.resume() : undefined);
      if (full) conn.pause();
    });
    conn.once('end', finish);
    conn.once('close', finish);
  }

  #portDone(): void {
    if (--this.#open === 0) this.close();
  }
}
