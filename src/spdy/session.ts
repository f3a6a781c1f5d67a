/**
 * A SPDY/3.1 connection over an already-upgraded socket, in either role:
 * the client (kubesocks' tunnel) or the server (the simulated kubelet).
 *
 * Behaviour follows moby/spdystream, the SPDY peer of every real port-forward:
 * - no flow control: WINDOW_UPDATE and SETTINGS are read and dropped, never
 *   sent (a sender that honoured the 64 KiB window would stall against it);
 * - framing errors (unknown frame type, bad or upper-case header names,
 *   PING id 0) tear down the whole connection;
 * - a peer-initiated stream id that does not increase gets RST PROTOCOL_ERROR;
 * - a received GOAWAY closes every stream; we never send one, we just close.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import { KubesocksError } from '../errors.js';
import { SpdyProtocolError } from './errors.js';
import {
  FrameReader,
  dataFrameHeader,
  pingFrame,
  rstStreamFrame,
  synReplyFrame,
  synStreamFrame,
  type Frame,
} from './frames.js';
import { HeaderCompressor, HeaderDecompressor } from './header-block.js';
import { FLAG_FIN, FrameType, MAX_STREAM_ID, RstCode, type SpdyHeaders } from './protocol.js';
import type { ReadBudget } from './read-budget.js';
import { SpdyStream, type StreamOwner, type StreamReadLimits } from './stream.js';
import { PING_TIMEOUT_MS } from '../net/timeouts.js';

const debug = debuglog('kubesocks:spdy');

export interface SpdySessionOptions {
  role: 'client' | 'server';
  /** Send a PING this often (ms); 0 disables. client-go pings every 5 s; the runtime never does. */
  pingIntervalMs?: number;
  /** Close the session when a PING stays unanswered this long (ms). */
  pingTimeoutMs?: number;
  /** Largest DATA payload per frame we send. */
  maxDataFrameBytes?: number;
  /** Bytes that may wait in the socket's write buffer before stream writes are held back. Default 1 MiB. */
  writeBufferBytes?: number;
  /** Per-stream buffer (both directions) before backpressure applies. */
  streamHighWaterMark?: number;
  /**
   * Unread bytes one stream may hold before the session stops reading its
   * socket (which stalls every stream on it). Default: streamHighWaterMark.
   */
  streamBufferBytes?: number;
  /** A cap on unread bytes shared with other sessions; past it, streams stop the socket at streamHighWaterMark. */
  readBudget?: ReadBudget;
}

export interface SpdySessionEvents {
  /** The peer opened a stream (SYN_STREAM). Answer with stream.reply() or stream.reset(). */
  stream: [stream: SpdyStream];
  /** The session is gone; every stream was destroyed with `error`. */
  close: [error: KubesocksError | undefined];
}

const DEFAULT_MAX_DATA_FRAME = 64 * 1024;
const DEFAULT_STREAM_HWM = 64 * 1024;
const DEFAULT_WRITE_BUFFER = 1024 * 1024;

/** spdystream's framer refuses these names (InvalidHeaderPresent), and that is fatal for the connection. */
const INVALID_RESPONSE_HEADERS = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding'];
const INVALID_REQUEST_HEADERS = [...INVALID_RESPONSE_HEADERS, 'host'];

function rejectInvalidHeaders(headers: SpdyHeaders, invalid: readonly string[]): void {
  for (const name of invalid) {
    if (Object.hasOwn(headers, name)) throw new SpdyProtocolError(`header "${name}" is not allowed in this frame`);
  }
}

export class SpdySession extends EventEmitter<SpdySessionEvents> implements StreamOwner {
  readonly role: 'client' | 'server';
  readonly #socket: Duplex;
  readonly #reader = new FrameReader();
  readonly #compressor = new HeaderCompressor();
  readonly #decompressor = new HeaderDecompressor();
  readonly #streams = new Map<number, SpdyStream>();
  readonly #blockedReaders = new Set<SpdyStream>();
  readonly #drainWaiters: Array<(error?: Error | null) => void> = [];
  /** Stream writes held back while the socket has writeBufferBytes queued (see writeStreamData). */
  readonly #waitingWrites: Array<{ stream: SpdyStream; data: Buffer; fin: boolean; callback: (error?: Error | null) => void }> = [];
  readonly #pendingPings = new Map<number, { sentAt: bigint; resolve: (rttMs: number) => void; reject: (e: Error) => void }>();
  readonly #maxDataFrame: number;
  readonly #writeBufferBytes: number;
  readonly #streamLimits: StreamReadLimits;
  readonly #pingTimeoutMs: number;
  #pingTimer: NodeJS.Timeout | undefined;
  #nextStreamId: number;
  #nextPingId: number;
  #lastPeerStreamId = 0;
  #closed: KubesocksError | null = null;
  #keepaliveFailed = false;
  #lastActivity = Date.now();
  #lastReceived = Date.now();
  #corked = false;

  constructor(socket: Duplex, options: SpdySessionOptions) {
    super();
    this.role = options.role;
    this.#socket = socket;
    this.#maxDataFrame = options.maxDataFrameBytes ?? DEFAULT_MAX_DATA_FRAME;
    this.#writeBufferBytes = options.writeBufferBytes ?? DEFAULT_WRITE_BUFFER;
    const highWaterMark = options.streamHighWaterMark ?? DEFAULT_STREAM_HWM;
    this.#streamLimits = {
      highWaterMark,
      bufferLimit: Math.max(highWaterMark, options.streamBufferBytes ?? highWaterMark),
      budget: options.readBudget,
    };
    this.#pingTimeoutMs = options.pingTimeoutMs ?? PING_TIMEOUT_MS;
    // Client-initiated ids are odd, server-initiated even (draft 3.1, 2.3.2);
    // PING ids follow the same parity rule (2.6.5).
    this.#nextStreamId = options.role === 'client' ? 1 : 2;
    this.#nextPingId = options.role === 'client' ? 1 : 2;

    socket.on('data', (chunk: Buffer) => this.#onSocketData(chunk));
    socket.on('drain', () => this.#onDrain());
    socket.on('error', (error) => this.close(new KubesocksError('CONNECTION_LOST', `connection error: ${error.message}`, { cause: error })));
    socket.on('end', () => this.close(new KubesocksError('CONNECTION_LOST', 'the peer closed the connection')));
    socket.on('close', () => this.close(new KubesocksError('CONNECTION_LOST', 'the connection closed')));

    const pingInterval = options.pingIntervalMs ?? 0;
    if (pingInterval > 0) {
      this.#pingTimer = setInterval(() => this.#keepalive(), pingInterval);
      this.#pingTimer.unref();
    }
  }

  get closed(): boolean {
    return this.#closed !== null;
  }

  /** Streams currently open on this session. */
  get streamCount(): number {
    return this.#streams.size;
  }

  /** Milliseconds since a frame was last sent or received on a stream. */
  get idleMs(): number {
    return this.#streams.size > 0 ? 0 : Date.now() - this.#lastActivity;
  }

  /** True while a stream's unread data holds the whole connection back (see SpdyStream). */
  get readingPaused(): boolean {
    return this.#blockedReaders.size > 0;
  }

  /** False once the stream id space is used up: open another connection. */
  get canOpenStream(): boolean {
    return !this.#closed && this.#nextStreamId <= MAX_STREAM_ID;
  }

  /** Opens a stream (SYN_STREAM). Header names must be lower-case. */
  openStream(headers: SpdyHeaders, options: { fin?: boolean; priority?: number } = {}): SpdyStream {
    if (this.#closed) throw this.#closed;
    if (!this.canOpenStream) throw new KubesocksError('CLOSED', 'SPDY stream ids are used up on this connection');
    const id = this.#nextStreamId;
    this.#nextStreamId += 2;
    const stream = new SpdyStream(this, id, headers, this.#streamLimits);
    this.#streams.set(id, stream);
    this.#touch();
    const flags = options.fin ? FLAG_FIN : 0;
    this.#send(synStreamFrame(id, flags, options.priority ?? 0, this.#compressor.compress(headers)));
    if (options.fin) {
      // FLAG_FIN on the SYN_STREAM is the FIN: a DATA frame after it would be
      // a protocol error (spdy-transport answers RST STREAM_ALREADY_CLOSED).
      stream.markFinSent();
      stream.end();
    }
    return stream;
  }

  /** Sends a PING and resolves with the round trip in milliseconds. */
  /** Whether the session was closed because a PING went unanswered (for the keepalive-failure count). */
  get keepaliveFailed(): boolean {
    return this.#keepaliveFailed;
  }

  ping(): Promise<number> {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = this.#nextPingId;
    this.#nextPingId = (this.#nextPingId + 2) % 0x100000000 || (this.role === 'client' ? 1 : 2);
    return new Promise((resolve, reject) => {
      this.#pendingPings.set(id, { sentAt: process.hrtime.bigint(), resolve, reject });
      this.#send(pingFrame(id));
    });
  }

  /** Hands the frames written so far to the socket now, instead of at the end of this event-loop turn. */
  flush(): void {
    if (this.#corked) this.#uncork();
  }

  /** Destroys every stream and the socket. Idempotent. */
  close(error?: KubesocksError): void {
    if (this.#closed) return;
    this.#closed = error ?? new KubesocksError('CLOSED', 'the port-forward connection was closed');
    debug('session closed: %s', this.#closed.message);
    if (this.#pingTimer) clearInterval(this.#pingTimer);
    for (const stream of [...this.#streams.values()]) stream.abort(this.#closed);
    this.#streams.clear();
    for (const ping of this.#pendingPings.values()) ping.reject(this.#closed);
    this.#pendingPings.clear();
    for (const waiter of this.#drainWaiters.splice(0)) waiter(this.#closed);
    for (const waiting of this.#waitingWrites.splice(0)) waiting.callback(this.#closed);
    this.#socket.destroy();
    this.emit('close', error);
  }

  // ---- StreamOwner: called by SpdyStream ----

  writeStreamData(stream: SpdyStream, data: Buffer, fin: boolean, callback: (error?: Error | null) => void): void {
    if (this.#closed) return callback(this.#closed);
    this.#touch();
    // Bytes handed to the TLS socket are encrypted at once and held, as a
    // copy, until the kernel takes them; and a write was only ever refused
    // its callback, never the socket. With many streams each adding a chunk,
    // that queue grew by a chunk per stream (1,000 sockets echoing to one
    // pod: hundreds of MiB). So once writeBufferBytes are queued, a write
    // waits its turn here, unencrypted, and its stream (and the local socket
    // relayed into it) stays paused until the queue has room.
    if (this.#waitingWrites.length > 0 || this.#socket.writableLength > this.#writeBufferBytes) {
      this.#waitingWrites.push({ stream, data, fin, callback });
      return;
    }
    this.#writeFrames(stream, data, fin);
    // A TLS socket's own high-water mark is 16 KiB, less than one frame:
    // waiting for 'drain' after every frame would leave the pipe idle between
    // frames. Up to writeBufferBytes may queue before writers wait.
    if (this.#socket.writableLength <= this.#writeBufferBytes) callback();
    else this.#drainWaiters.push(callback);
  }

  #writeFrames(stream: SpdyStream, data: Buffer, fin: boolean): void {
    let offset = 0;
    do {
      const end = Math.min(data.length, offset + this.#maxDataFrame);
      const last = end === data.length;
      this.#send(dataFrameHeader(stream.id, fin && last, end - offset));
      if (end > offset) this.#send(offset === 0 && last ? data : data.subarray(offset, end));
      offset = end;
    } while (offset < data.length);
  }

  writeStreamReply(stream: SpdyStream, headers: SpdyHeaders): void {
    if (this.#closed) return;
    this.#send(synReplyFrame(stream.id, 0, this.#compressor.compress(headers)));
  }

  writeStreamReset(stream: SpdyStream, status: number): void {
    if (this.#closed) return;
    this.#send(rstStreamFrame(stream.id, status));
  }

  pauseReadingFor(stream: SpdyStream): void {
    this.#blockedReaders.add(stream);
    this.#socket.pause();
  }

  resumeReadingFor(stream: SpdyStream): void {
    if (this.#blockedReaders.delete(stream) && this.#blockedReaders.size === 0 && !this.#closed) {
      // The peer's silence while we were not reading proves nothing: its
      // PING answers sat unread in our own buffer. Count from now.
      this.#lastReceived = Date.now();
      for (const ping of this.#pendingPings.values()) ping.sentAt = process.hrtime.bigint();
      this.#socket.resume();
    }
  }

  forgetStream(stream: SpdyStream): void {
    if (this.#streams.get(stream.id) === stream) this.#streams.delete(stream.id);
    this.resumeReadingFor(stream);
    this.#touch();
  }

  // ---- reading ----

  #onSocketData(chunk: Buffer): void {
    this.#lastReceived = Date.now();
    this.#reader.push(chunk);
    try {
      for (let frame = this.#reader.next(); frame && !this.#closed; frame = this.#reader.next()) this.#handle(frame);
    } catch (error) {
      const reason = error instanceof KubesocksError ? error : new SpdyProtocolError(String(error));
      debug('fatal: %s', reason.message);
      this.close(reason);
    }
  }

  #handle(frame: Frame): void {
    if (frame.type === 'data') {
      if (frame.streamId === 0) throw new SpdyProtocolError('DATA frame on stream 0');
      // DATA for a stream we no longer know (closed or reset) is dropped, as spdystream does.
      this.#streams.get(frame.streamId)?.receiveData(frame.data, frame.fin);
      return;
    }
    const { payload, flags } = frame;
    const need = (bytes: number): void => {
      if (payload.length < bytes) throw new SpdyProtocolError(`control frame ${frame.frameType} too short`);
    };
    switch (frame.frameType) {
      case FrameType.SYN_STREAM: {
        need(10);
        const id = payload.readUInt32BE(0) & 0x7fffffff;
        // Decompress before any check: the zlib context must see every block.
        const headers = this.#decompressor.decompress(payload.subarray(10));
        rejectInvalidHeaders(headers, INVALID_REQUEST_HEADERS);
        if (id === 0) throw new SpdyProtocolError('SYN_STREAM with stream id 0');
        this.#onPeerStream(id, headers, (flags & FLAG_FIN) !== 0);
        return;
      }
      case FrameType.SYN_REPLY:
      case FrameType.HEADERS: {
        need(4);
        const id = payload.readUInt32BE(0) & 0x7fffffff;
        const headers = this.#decompressor.decompress(payload.subarray(4));
        // As spdystream: SYN_REPLY uses the response list, HEADERS picks by stream id parity.
        const request = frame.frameType === FrameType.HEADERS && id % 2 === 0;
        rejectInvalidHeaders(headers, request ? INVALID_REQUEST_HEADERS : INVALID_RESPONSE_HEADERS);
        if (id === 0) throw new SpdyProtocolError('header frame with stream id 0');
        const stream = this.#streams.get(id);
        const fin = (flags & FLAG_FIN) !== 0;
        if (frame.frameType === FrameType.SYN_REPLY) stream?.receiveReply(headers, fin);
        else stream?.receiveHeaders(headers, fin);
        return;
      }
      case FrameType.RST_STREAM: {
        need(8);
        const id = payload.readUInt32BE(0) & 0x7fffffff;
        const status = payload.readUInt32BE(4);
        if (id === 0) throw new SpdyProtocolError('RST_STREAM with stream id 0');
        if (status === 0) throw new SpdyProtocolError('RST_STREAM with status 0');
        this.#streams.get(id)?.receiveReset(status);
        return;
      }
      case FrameType.PING: {
        need(4);
        const id = payload.readUInt32BE(0);
        if (id === 0) throw new SpdyProtocolError('PING with id 0');
        const ours = (id % 2 === 1) === (this.role === 'client');
        if (!ours) {
          this.#send(pingFrame(id));
          return;
        }
        const pending = this.#pendingPings.get(id);
        if (pending) {
          this.#pendingPings.delete(id);
          pending.resolve(Number(process.hrtime.bigint() - pending.sentAt) / 1e6);
        }
        return;
      }
      case FrameType.GOAWAY:
        this.close(new KubesocksError('CONNECTION_LOST', 'the peer sent GOAWAY'));
        return;
      case FrameType.SETTINGS:
      case FrameType.WINDOW_UPDATE:
        return; // no flow control, as in spdystream
      default:
        throw new SpdyProtocolError(`unexpected control frame type ${frame.frameType}`);
    }
  }

  #onPeerStream(id: number, headers: SpdyHeaders, fin: boolean): void {
    const peerParity = this.role === 'client' ? 0 : 1;
    if (id % 2 !== peerParity || id <= this.#lastPeerStreamId) {
      this.#send(rstStreamFrame(id, RstCode.PROTOCOL_ERROR));
      return;
    }
    this.#lastPeerStreamId = id;
    if (this.listenerCount('stream') === 0) {
      this.#send(rstStreamFrame(id, RstCode.REFUSED_STREAM));
      return;
    }
    const stream = new SpdyStream(this, id, headers, this.#streamLimits, fin);
    this.#streams.set(id, stream);
    this.#touch();
    this.emit('stream', stream);
  }

  #onDrain(): void {
    for (const waiter of this.#drainWaiters.splice(0)) waiter();
    // Waiting writes go out in arrival order while there is room; a stream
    // destroyed meanwhile (reset) sends nothing more.
    while (this.#waitingWrites.length > 0 && !this.#closed && this.#socket.writableLength <= this.#writeBufferBytes) {
      const { stream, data, fin, callback } = this.#waitingWrites.shift()!;
      if (!stream.destroyed) this.#writeFrames(stream, data, fin);
      callback();
    }
  }

  /**
   * A connection is dead when a PING went unanswered for pingTimeoutMs and
   * nothing else arrived meanwhile either. Bytes arriving prove it alive: a
   * PING queued behind megabytes of DATA on a busy connection is late, not lost.
   * Liveness is judged only from what we had a chance to read: while a slow
   * reader keeps the socket paused, the answer may be sitting in our own
   * buffer, so no verdict is reached (the clock restarts on resume).
   */
  #keepalive(): void {
    if (this.#blockedReaders.size > 0) return;
    const now = process.hrtime.bigint();
    const silentMs = Date.now() - this.#lastReceived;
    if (silentMs > this.#pingTimeoutMs) {
      for (const ping of this.#pendingPings.values()) {
        if (Number(now - ping.sentAt) / 1e6 > this.#pingTimeoutMs) {
          this.#keepaliveFailed = true;
          this.close(new KubesocksError('CONNECTION_LOST', `no answer to PING and no data for ${Math.round(this.#pingTimeoutMs / 1000)} s`));
          return;
        }
      }
    }
    // One PING in flight at a time is enough to detect a dead peer.
    if (this.#pendingPings.size === 0) this.ping().catch(() => {});
  }

  /**
   * Every frame goes out through here. The socket stays corked until the
   * event loop's check phase, so all frames written while handling one round
   * of I/O (a frame header and its payload; frames of many streams) leave in
   * one writev — one TLS write — instead of one each, without copying.
   */
  #send(bytes: Buffer): void {
    if (!this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      setImmediate(this.#uncork);
    }
    this.#socket.write(bytes);
  }

  readonly #uncork = (): void => {
    this.#corked = false;
    this.#socket.uncork();
  };

  #touch(): void {
    this.#lastActivity = Date.now();
  }
}
