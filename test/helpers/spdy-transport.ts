/**
 * spdy-transport 3.0.0 (CommonJS, untyped) as an independent SPDY/3.1 peer,
 * with the two workarounds protocol.md documents for talking to spdystream
 * (and so to our SpdySession):
 *  1. spdystream's SYN_REPLY has no `:status`; spdy-transport would answer
 *     every stream with RST PROTOCOL_ERROR. `_spdyState.needResponse = false`
 *     right after request() makes the reply arrive as a 'headers' event.
 *  2. spdystream never sends WINDOW_UPDATE; spdy-transport would stall after
 *     64 KiB per stream (and per connection in 3.1 mode). A no-op
 *     `window.send.update` on the stream and the connection avoids that.
 */
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { connect } from './spdy-net.js';

const require = createRequire(import.meta.url);

interface WindowSide {
  update(size: number, callback?: () => void): void;
}

interface HasWindow {
  _spdyState: { window: { send: WindowSide } };
}

/** A spdy-transport stream (readable-stream Duplex). */
export interface StStream extends Duplex, HasWindow {
  id: number;
  headers: Record<string, string>;
  _spdyState: HasWindow['_spdyState'] & { needResponse: boolean };
  respond(status: number, headers: Record<string, string>, callback?: (error?: Error) => void): void;
  abort(code?: string, callback?: () => void): void;
}

/** A parsed frame as spdy-transport's connection sees it ('frame' event). */
export interface StFrame {
  type: string;
  id?: number;
  code?: string;
  fin?: boolean;
  data?: Buffer;
  headers?: Record<string, string>;
  delta?: number;
}

export interface StConnection extends EventEmitter, HasWindow {
  start(version: number): void;
  request(
    options: { method: string; path: string; headers: Record<string, string> },
    callback?: (error: Error | null, stream?: StStream) => void,
  ): StStream;
  ping(callback: (error: Error | null) => void): void;
  end(callback?: () => void): void;
  getVersion(): number | null;
  socket: net.Socket;
}

interface SpdyTransportModule {
  connection: { create(socket: Duplex, options: { protocol: 'spdy'; isServer: boolean }): StConnection };
}

export const spdyTransport = require('spdy-transport') as SpdyTransportModule;

/** Workaround 2: never wait for a WINDOW_UPDATE that spdystream will not send. */
export function disableSendWindow(target: HasWindow): void {
  target._spdyState.window.send.update = (_size, callback) => {
    if (callback) process.nextTick(callback);
  };
}

export interface StPeer {
  conn: StConnection;
  socket: net.Socket;
  /** Every frame spdy-transport parsed from us. */
  frames: StFrame[];
  errors: Error[];
  /** RST_STREAM frames spdy-transport received, as [id, code]. */
  resets(): Array<[number, string]>;
  close(): void;
}

function wrap(conn: StConnection, socket: net.Socket): StPeer {
  const frames: StFrame[] = [];
  const errors: Error[] = [];
  conn.on('frame', (frame: StFrame) => frames.push(frame));
  conn.on('error', (error: Error) => errors.push(error));
  socket.on('error', () => {});
  return {
    conn,
    socket,
    frames,
    errors,
    resets: () => frames.filter((f) => f.type === 'RST').map((f) => [f.id ?? -1, f.code ?? '?']),
    close: () => socket.destroy(),
  };
}

/** spdy-transport as a SPDY/3.1 server on an accepted socket. */
export function spdyTransportServer(socket: net.Socket, options: { windowWorkaround?: boolean } = {}): StPeer {
  const conn = spdyTransport.connection.create(socket, { protocol: 'spdy', isServer: true });
  conn.start(3.1);
  if (options.windowWorkaround !== false) disableSendWindow(conn);
  return wrap(conn, socket);
}

export interface StClient extends StPeer {
  /**
   * Opens a stream (SYN_STREAM with `:method POST`, `:path /` and `headers`),
   * workarounds applied unless disabled. `sent` resolves once the SYN_STREAM
   * is written: spdy-transport sends it on the next tick, but an end() before
   * that sends it at once, out of id order (which a spdystream peer answers
   * with RST PROTOCOL_ERROR), so end a fresh stream only after `sent`.
   */
  request(headers: Record<string, string>, options?: { replyWorkaround?: boolean; windowWorkaround?: boolean }): StStream & { sent: Promise<void> };
}

/** spdy-transport as a SPDY/3.1 client on a new connection to 127.0.0.1:port. */
export async function spdyTransportClient(port: number, options: { windowWorkaround?: boolean } = {}): Promise<StClient> {
  const socket = await connect(port);
  const conn = spdyTransport.connection.create(socket, { protocol: 'spdy', isServer: false });
  conn.start(3.1);
  if (options.windowWorkaround !== false) disableSendWindow(conn);
  const peer = wrap(conn, socket);
  return {
    ...peer,
    request(headers, opts = {}) {
      let sent!: () => void;
      const sentPromise = new Promise<void>((resolve) => (sent = resolve));
      const stream = conn.request({ method: 'POST', path: '/', headers }, () => sent());
      if (opts.replyWorkaround !== false) stream._spdyState.needResponse = false;
      if (opts.windowWorkaround !== false) disableSendWindow(stream);
      stream.on('error', () => {});
      return Object.assign(stream, { sent: sentPromise });
    },
  };
}

/** Collects a spdy-transport stream's data until 'end' or 'close' (a reset shows only as 'close'). */
export function collectUntilClose(stream: StStream): Promise<{ data: Buffer; ended: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let ended = false;
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => {
      ended = true;
      resolve({ data: Buffer.concat(chunks), ended });
    });
    // spdy-transport emits 'close' from inside 'end' (before later 'end'
    // listeners run) when both sides are done; endEmitted tells the cases apart.
    stream.once('close', () => resolve({ data: Buffer.concat(chunks), ended: ended || readableEnded(stream) }));
  });
}

function readableEnded(stream: StStream): boolean {
  return (stream as unknown as { _readableState: { endEmitted: boolean } })._readableState.endEmitted;
}
