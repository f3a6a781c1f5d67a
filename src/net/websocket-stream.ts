/**
 * The client end of a port-forward WebSocket tunnel (KEP-4006) as a byte
 * stream, framed here on the upgraded socket (RFC 6455), as client-go's
 * TunnelingConnection reads and writes one (tools/portforward/tunneling_connection.go):
 *
 * - every write is one binary message (a corked batch of writes is one
 *   message, cut into messages of at most ~128 KiB when larger);
 * - binary messages read as one continuous byte stream: a SPDY frame may span
 *   messages, and a message may hold several frames (fragmented messages too);
 * - a text message is a protocol error (client-go: "invalid message type");
 * - a close frame with code 1000 reads as EOF; any other close, or the TCP
 *   connection dropping without one, is an error, so a tunnel cut midway
 *   reaches the SPDY session (and every stream on it) as a failure, never as a
 *   clean end;
 * - ending the stream sends close 1000; a PING is answered with a PONG.
 *
 * Why not ws's WebSocket: measured on the bench (docs/transports.md), ws
 * cost this path a copy per byte each way — on upload Buffer.concat of the
 * batch and then its masking copy into a fresh buffer, on download the copy
 * that joins a frame from the TLS records it spans — and the fresh buffers'
 * garbage collection. Here an upload is masked once, straight from the
 * caller's chunks into a reused buffer, and a download is handed on as
 * slices of what the socket read, never copied. (The handshake is
 * websocket-upgrade.ts's; the simulated API server still speaks ws, an
 * independent implementation on the other end of every test.)
 *
 * Backpressure both ways: a full read buffer pauses the socket, and past
 * SOCKET_QUEUE_BYTES queued in the socket a write completes only on its
 * 'drain', so a slow API server holds the SPDY session's writers back.
 */
import { randomFillSync } from 'node:crypto';
import { createRequire } from 'node:module';
import { Duplex } from 'node:stream';
import { KubesocksError } from '../errors.js';

/** RFC 6455 7.4.1: normal closure. */
export const CLOSE_NORMAL = 1000;
const CLOSE_PROTOCOL_ERROR = 1002;
/** RFC 6455 7.4.1: reserved for "no status code in the close frame". */
const CLOSE_NO_STATUS = 1005;

const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** Longest control frame payload (RFC 6455 5.5). */
const MAX_CONTROL_PAYLOAD = 125;
/** How long a close we sent may wait for the server's before the socket is dropped. */
const CLOSE_WAIT_MS = 5_000;

/**
 * Outgoing messages are assembled in buffers of this size, taken from a
 * process-wide free list and put back once the socket has taken them (a
 * larger batch is sent as several messages). A batch from the SPDY session
 * is typically one 64 KiB DATA frame and its header.
 */
const OUT_BUFFER_BYTES = 128 * 1024;
/** The largest message sent: what fits one output buffer after the longest frame header (2 + 8 + 4 bytes). */
const MAX_MESSAGE_BYTES = OUT_BUFFER_BYTES - 14;
/** At most this many free buffers are kept (2 MiB), whatever the number of tunnels. */
const OUT_BUFFERS_KEPT = 16;
const freeOutBuffers: Buffer[] = [];

/**
 * A write completes at once while the socket has at most this much queued,
 * else on its 'drain': waiting for each frame to be flushed before taking
 * the next would leave the pipe idle between frames and gather the session's
 * writes into ever larger messages (the SPDY session bounds its own queue the same way).
 */
const SOCKET_QUEUE_BYTES = 256 * 1024;

type Mask = (source: Buffer, mask: Buffer, output: Buffer, offset: number, length: number) => void;

/** RFC 6455 5.3 in JavaScript: output[offset + i] = source[i] ^ mask[i % 4]. */
function maskInJavaScript(source: Buffer, mask: Buffer, output: Buffer, offset: number, length: number): void {
  for (let i = 0; i < length; i++) output[offset + i] = source[i]! ^ mask[i & 3]!;
}

/**
 * The native mask of `bufferutil` (an optional dependency, as for ws: 45×
 * cheaper than JavaScript, see docs/transports.md), unless absent or turned
 * off with ws's own switch WS_NO_BUFFER_UTIL.
 */
function loadMask(): Mask {
  if (process.env.WS_NO_BUFFER_UTIL) return maskInJavaScript;
  try {
    const native = (createRequire(import.meta.url)('bufferutil') as { mask: Mask }).mask;
    // Below a few dozen bytes (a SPDY frame header) the call costs more than the loop.
    return (source, mask, output, offset, length) => (length < 48 ? maskInJavaScript : native)(source, mask, output, offset, length);
  } catch {
    return maskInJavaScript;
  }
}

const applyMask = loadMask();

/** Masking keys come from the CSPRNG (RFC 6455 10.3: unpredictable), drawn 8 KiB at a time. */
const RANDOM_POOL = Buffer.alloc(8 * 1024);
let randomOffset = RANDOM_POOL.length;

function nextMaskingKey(into: Buffer, at: number): void {
  if (randomOffset === RANDOM_POOL.length) {
    randomFillSync(RANDOM_POOL);
    randomOffset = 0;
  }
  RANDOM_POOL.copy(into, at, randomOffset, randomOffset + 4);
  randomOffset += 4;
}

export class WebSocketByteStream extends Duplex {
  readonly #socket: Duplex;
  // --- reading: the frame being parsed
  /** The frame header read so far (at most 2 + 8 bytes: a server's frames are not masked). */
  readonly #head = Buffer.alloc(10);
  #headBytes = 0;
  /** Payload bytes of the current frame still to come. */
  #payloadLeft = 0;
  #opcode = 0;
  /** A binary message was started without FIN: continuation frames belong to it. */
  #inMessage = false;
  /** The payload of the control frame being read. */
  #control: Buffer[] = [];
  // --- state
  #closeSent = false;
  #closeReceived = false;
  #closeTimer: NodeJS.Timeout | undefined;
  // --- writing
  /** The write waiting for the socket's 'drain'. */
  #drainWaiter: ((error?: Error | null) => void) | undefined;
  /** The rotated masking key for a chunk that starts mid-key. */
  readonly #rotated = Buffer.alloc(4);

  /** `head`: bytes that arrived with the 101 answer, already part of the stream. */
  constructor(socket: Duplex, head: Buffer = Buffer.alloc(0)) {
    // No half-close over WebSockets: ending either side closes both.
    super({ allowHalfOpen: false });
    this.#socket = socket;
    socket.on('data', this.#onData);
    socket.on('end', this.#onSocketEnd);
    socket.on('close', this.#onSocketEnd);
    socket.on('error', this.#onSocketError);
    socket.on('drain', this.#onDrain);
    if (head.length > 0) this.#onData(head);
  }

  // ---- reading

  readonly #onData = (chunk: Buffer): void => {
    let at = 0;
    while (at < chunk.length && !this.destroyed && !this.#closeReceived) {
      if (this.#payloadLeft > 0) {
        const take = Math.min(this.#payloadLeft, chunk.length - at);
        const piece = take === chunk.length ? chunk : chunk.subarray(at, at + take);
        at += take;
        this.#payloadLeft -= take;
        if (this.#opcode >= OPCODE.close) {
          this.#control.push(piece);
          if (this.#payloadLeft === 0) this.#onControlFrame();
        } else if (!this.push(piece)) {
          // The buffer is full: stop the socket until _read (the rest of this chunk is kept).
          this.#socket.pause();
        }
        continue;
      }
      at = this.#readHead(chunk, at);
    }
  };

  /** Reads frame header bytes from `chunk` at `at`; returns where it stopped. */
  #readHead(chunk: Buffer, at: number): number {
    const head = this.#head;
    while (this.#headBytes < 2 && at < chunk.length) head[this.#headBytes++] = chunk[at++]!;
    if (this.#headBytes < 2) return at;
    const first = head[0]!;
    const second = head[1]!;
    const lengthBytes = (second & 0x7f) === 126 ? 2 : (second & 0x7f) === 127 ? 8 : 0;
    const headLength = 2 + lengthBytes;
    while (this.#headBytes < headLength && at < chunk.length) head[this.#headBytes++] = chunk[at++]!;
    if (this.#headBytes < headLength) return at;
    this.#headBytes = 0;

    if ((first & 0x70) !== 0) return this.#protocolError('a frame has reserved bits set (no extension was negotiated)');
    if ((second & 0x80) !== 0) return this.#protocolError('the server sent a masked frame');
    let length = second & 0x7f;
    if (lengthBytes === 2) length = head.readUInt16BE(2);
    else if (lengthBytes === 8) {
      const high = head.readUInt32BE(2);
      if (high > 0x1fffff) return this.#protocolError('a frame is longer than 2^53 bytes');
      length = high * 2 ** 32 + head.readUInt32BE(6);
    }
    const fin = (first & 0x80) !== 0;
    const opcode = first & 0x0f;
    switch (opcode) {
      case OPCODE.binary:
      case OPCODE.continuation:
        if (opcode === OPCODE.binary && this.#inMessage) return this.#protocolError('a new message started before the last one ended');
        if (opcode === OPCODE.continuation && !this.#inMessage) return this.#protocolError('a continuation frame outside a message');
        this.#inMessage = !fin;
        this.#opcode = OPCODE.binary;
        break;
      case OPCODE.text:
        this.destroy(new KubesocksError('PROTOCOL_ERROR', 'the peer sent a text message in the port-forward tunnel; only binary messages carry it'));
        return Number.MAX_SAFE_INTEGER;
      case OPCODE.close:
      case OPCODE.ping:
      case OPCODE.pong:
        if (!fin) return this.#protocolError('a fragmented control frame');
        if (length > MAX_CONTROL_PAYLOAD) return this.#protocolError(`a control frame of ${length} bytes (at most ${MAX_CONTROL_PAYLOAD})`);
        this.#opcode = opcode;
        this.#control = [];
        if (length === 0) this.#onControlFrame();
        break;
      default:
        return this.#protocolError(`unknown opcode ${opcode}`);
    }
    this.#payloadLeft = length;
    return at;
  }

  #onControlFrame(): void {
    const payload = this.#control.length === 1 ? this.#control[0]! : Buffer.concat(this.#control);
    this.#control = [];
    if (this.#opcode === OPCODE.ping) {
      this.#sendControl(OPCODE.pong, payload);
    } else if (this.#opcode === OPCODE.close) {
      this.#onClose(payload);
    }
    this.#opcode = 0;
  }

  #onClose(payload: Buffer): void {
    this.#closeReceived = true;
    if (payload.length === 1) {
      this.#protocolError('a close frame with a 1-byte payload');
      return;
    }
    const code = payload.length >= 2 ? payload.readUInt16BE(0) : CLOSE_NO_STATUS;
    // Answer the close (RFC 6455 5.5.1) and let the socket go: nothing follows a close.
    this.#sendControl(OPCODE.close, payload.subarray(0, 2));
    this.#socket.end();
    if (code === CLOSE_NORMAL) {
      this.push(null);
      return;
    }
    const reason = payload.subarray(2).toString('utf8');
    this.destroy(new KubesocksError('CONNECTION_LOST', `the port-forward WebSocket closed abnormally: close code ${code}${reason.length > 0 ? ` (${reason})` : ''}`));
  }

  readonly #onSocketEnd = (): void => {
    if (this.#closeReceived || this.destroyed) return;
    this.destroy(new KubesocksError('CONNECTION_LOST', 'the port-forward WebSocket closed abnormally: the connection dropped without a close frame'));
  };

  readonly #onSocketError = (error: Error): void => {
    this.destroy(new KubesocksError('CONNECTION_LOST', `port-forward WebSocket error: ${error.message}`, { cause: error }));
  };

  /** A broken frame: tell the server (close 1002) and fail the stream. Returns a position past the chunk. */
  #protocolError(what: string): number {
    this.#sendControl(OPCODE.close, closePayload(CLOSE_PROTOCOL_ERROR));
    this.destroy(new KubesocksError('PROTOCOL_ERROR', `port-forward WebSocket: ${what}`));
    return Number.MAX_SAFE_INTEGER;
  }

  override _read(): void {
    this.#socket.resume();
  }

  // ---- writing

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#sendMessages([chunk], callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    // A SPDY frame header and its payload (and the frames of other streams)
    // arrive as one corked batch: one message, one mask pass, one socket write.
    this.#sendMessages(
      chunks.map((c) => c.chunk),
      callback,
    );
  }

  /** `chunks` as one message, or as several of at most MAX_MESSAGE_BYTES when larger (the peer reads a byte stream). */
  #sendMessages(chunks: Buffer[], callback: (error?: Error | null) => void): void {
    if (this.#closeSent || this.#socket.destroyed || !this.#socket.writable) {
      callback(new KubesocksError('CONNECTION_LOST', 'the port-forward WebSocket is closed'));
      return;
    }
    let message: Buffer[] = [];
    let length = 0;
    for (let chunk of chunks) {
      while (chunk.length > 0) {
        const take = Math.min(chunk.length, MAX_MESSAGE_BYTES - length);
        message.push(take === chunk.length ? chunk : chunk.subarray(0, take));
        length += take;
        chunk = chunk.subarray(take);
        if (length === MAX_MESSAGE_BYTES) {
          this.#sendMessage(message, length);
          message = [];
          length = 0;
        }
      }
    }
    if (length > 0) this.#sendMessage(message, length);
    if (this.#socket.writableLength <= SOCKET_QUEUE_BYTES) {
      callback();
    } else {
      this.#drainWaiter = callback;
    }
  }

  #sendMessage(chunks: Buffer[], length: number): void {
    const buffer = freeOutBuffers.pop() ?? Buffer.allocUnsafeSlow(OUT_BUFFER_BYTES);
    // Once the socket has taken the frame (a TLS socket encrypts a copy), the
    // buffer is free again. A failed write surfaces as the socket's 'error'.
    this.#socket.write(this.#frame(OPCODE.binary, chunks, length, buffer), () => {
      if (freeOutBuffers.length < OUT_BUFFERS_KEPT) freeOutBuffers.push(buffer);
    });
  }

  readonly #onDrain = (): void => {
    const waiter = this.#drainWaiter;
    this.#drainWaiter = undefined;
    waiter?.();
  };

  /** One masked frame of `chunks` (`length` bytes) written into `into`; returns the frame. */
  #frame(opcode: number, chunks: Buffer[], length: number, into: Buffer): Buffer {
    let at = 2;
    into[0] = 0x80 | opcode;
    if (length < 126) {
      into[1] = 0x80 | length;
    } else if (length < 65536) {
      into[1] = 0x80 | 126;
      into.writeUInt16BE(length, 2);
      at = 4;
    } else {
      into[1] = 0x80 | 127;
      into.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
      into.writeUInt32BE(length >>> 0, 6);
      at = 10;
    }
    // RFC 6455 5.3: every client frame is masked, with a fresh key.
    nextMaskingKey(into, at);
    const key = into.subarray(at, at + 4);
    at += 4;
    let offset = 0;
    for (const chunk of chunks) {
      // The key runs on across chunks: a chunk starting mid-key starts with the key rotated.
      const phase = offset & 3;
      let mask = key;
      if (phase !== 0) {
        for (let i = 0; i < 4; i++) this.#rotated[i] = key[(phase + i) & 3]!;
        mask = this.#rotated;
      }
      applyMask(chunk, mask, into, at + offset, chunk.length);
      offset += chunk.length;
    }
    return into.subarray(0, at + length);
  }

  #sendControl(opcode: number, payload: Buffer): void {
    if (this.#closeSent || this.#socket.destroyed || !this.#socket.writable) return;
    if (opcode === OPCODE.close) this.#closeSent = true;
    this.#socket.write(this.#frame(opcode, [payload], payload.length, Buffer.allocUnsafe(6 + payload.length)));
  }

  override _final(callback: (error?: Error | null) => void): void {
    // The kubelet side cannot see a half-close; ending is closing (client-go's Close sends 1000).
    this.#closeGracefully();
    callback();
  }

  /** Close 1000, then the server closes the connection (RFC 6455 7.1.1); one that does not is dropped. */
  #closeGracefully(): void {
    if (this.#closeSent || this.#closeReceived) return;
    this.#sendControl(OPCODE.close, closePayload(CLOSE_NORMAL));
    this.#closeTimer = setTimeout(() => this.#socket.destroy(), CLOSE_WAIT_MS);
    this.#closeTimer.unref();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#socket.off('data', this.#onData);
    this.#socket.off('drain', this.#onDrain);
    this.#drainWaiter = undefined;
    if (!error && !this.#closeReceived && !this.#socket.destroyed) {
      // Destroyed without an error (the session is done with it): still a clean close.
      this.#closeGracefully();
      this.#socket.once('close', () => clearTimeout(this.#closeTimer));
      // Whatever the server still sends is of no interest now; keep the socket flowing to its close.
      this.#socket.resume();
    } else {
      clearTimeout(this.#closeTimer);
      this.#socket.destroy();
    }
    callback(error);
  }
}

function closePayload(code: number): Buffer {
  const payload = Buffer.alloc(2);
  payload.writeUInt16BE(code, 0);
  return payload;
}
