/**
 * One SPDY stream as a Node Duplex. Writes become DATA frames, `end()` sends
 * an empty DATA frame with FIN, a received FIN ends the readable side, a
 * received RST_STREAM destroys it, and destroying it early sends RST_STREAM
 * CANCEL (what spdystream's Reset() sends).
 *
 * Backpressure: writes wait for the socket's 'drain'. Reads have no SPDY-level
 * lever against spdystream (it implements no flow control), so a stream whose
 * reader falls behind first buffers up to its `bufferLimit` (while the shared
 * ReadBudget lasts), and only then pauses the whole connection's socket until
 * it is read again — the same stall spdystream itself applies to its peer.
 */
import { Duplex } from 'node:stream';
import { StreamResetError } from './errors.js';
import { RstCode, type SpdyHeaders } from './protocol.js';
import type { ReadBudget } from './read-budget.js';

/** What a stream needs from its session (implemented by SpdySession). */
export interface StreamOwner {
  writeStreamData(stream: SpdyStream, data: Buffer, fin: boolean, callback: (error?: Error | null) => void): void;
  writeStreamReply(stream: SpdyStream, headers: SpdyHeaders): void;
  writeStreamReset(stream: SpdyStream, status: number): void;
  pauseReadingFor(stream: SpdyStream): void;
  resumeReadingFor(stream: SpdyStream): void;
  forgetStream(stream: SpdyStream): void;
}

/** How much a stream may hold unread before it stops its connection's reading. */
export interface StreamReadLimits {
  /** Node's highWaterMark for both directions. */
  highWaterMark: number;
  /** Unread bytes a stream may hold before it pauses the connection (≥ highWaterMark). */
  bufferLimit: number;
  /** Shared cap over many streams; once it is used up, a stream past highWaterMark pauses the connection. */
  budget?: ReadBudget | undefined;
}

const EMPTY = Buffer.alloc(0);

export class SpdyStream extends Duplex {
  readonly id: number;
  /** Headers of the SYN_STREAM that opened this stream. */
  readonly headers: SpdyHeaders;
  /** Headers of the SYN_REPLY, once it arrived (our own streams only). */
  replyHeaders: SpdyHeaders | undefined;
  readonly #owner: StreamOwner;
  #finReceived = false;
  #finSent = false;
  #resetSeen = false;
  /** RST_STREAM arrived while received data was still unread: fail once it has been read. */
  #pendingReset: StreamResetError | undefined;
  readonly #limits: StreamReadLimits;
  /** readableLength as last counted in the budget. */
  #counted = 0;

  constructor(owner: StreamOwner, id: number, headers: SpdyHeaders, limits: StreamReadLimits, finReceived = false) {
    super({ allowHalfOpen: true, readableHighWaterMark: limits.highWaterMark, writableHighWaterMark: limits.highWaterMark });
    this.#limits = limits;
    this.#owner = owner;
    this.id = id;
    this.headers = headers;
    if (finReceived) this.#markFinReceived();
  }

  /** Answers a peer's SYN_STREAM (server side). */
  reply(headers: SpdyHeaders = {}): void {
    if (!this.destroyed) this.#owner.writeStreamReply(this, headers);
  }

  /** Sends RST_STREAM and destroys the stream without an error. */
  reset(status: number = RstCode.CANCEL): void {
    if (this.destroyed) return;
    this.#resetSeen = true;
    this.#owner.writeStreamReset(this, status);
    this.destroy();
  }

  override _read(): void {
    this.#owner.resumeReadingFor(this);
  }

  /** Every way of consuming (flowing, 'readable', async iteration) goes through read(). */
  override read(size?: number): any {
    const chunk: unknown = super.read(size);
    this.#count();
    const reset = this.#pendingReset;
    if (reset && !this.#finReceived && this.readableLength === 0 && !this.destroyed) {
      process.nextTick(() => this.destroy(reset)); // after the last chunk has been handed over
    }
    return chunk;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#owner.writeStreamData(this, chunk, false, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.#finSent) return callback(); // the FIN already went out on the SYN_STREAM
    this.#finSent = true;
    this.#owner.writeStreamData(this, EMPTY, true, callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.#resetSeen && !(this.#finSent && this.#finReceived)) {
      this.#resetSeen = true;
      this.#owner.writeStreamReset(this, RstCode.CANCEL);
    }
    this.#owner.forgetStream(this);
    this.#limits.budget?.adjust(-this.#counted);
    this.#counted = 0;
    callback(error);
  }

  /** @internal A DATA frame arrived. */
  receiveData(data: Buffer, fin: boolean): void {
    if (this.destroyed || this.#finReceived || this.#pendingReset) return;
    if (data.length > 0) {
      this.push(data);
      this.#count();
      if (this.#overLimit()) this.#owner.pauseReadingFor(this);
    }
    if (fin) this.#markFinReceived();
  }

  /** Past its own buffer limit, or past highWaterMark while the shared budget is used up. */
  #overLimit(): boolean {
    const held = this.readableLength;
    if (held <= this.readableHighWaterMark) return false;
    return held > this.#limits.bufferLimit || this.#limits.budget?.exhausted === true;
  }

  #count(): void {
    const held = this.destroyed ? 0 : this.readableLength;
    this.#limits.budget?.adjust(held - this.#counted);
    this.#counted = held;
  }

  /** @internal The SYN_STREAM that opened this stream carried FLAG_FIN: end() must not send a second FIN. */
  markFinSent(): void {
    this.#finSent = true;
  }

  /** @internal SYN_REPLY arrived. */
  receiveReply(headers: SpdyHeaders, fin: boolean): void {
    this.replyHeaders = headers;
    this.emit('reply', headers);
    if (fin) this.receiveData(EMPTY, true);
  }

  /** @internal HEADERS arrived. */
  receiveHeaders(headers: SpdyHeaders, fin: boolean): void {
    this.emit('headers', headers);
    if (fin) this.receiveData(EMPTY, true);
  }

  /** @internal RST_STREAM arrived. */
  receiveReset(status: number): void {
    if (this.destroyed || this.#pendingReset) return;
    this.#resetSeen = true;
    const error = new StreamResetError(status, this.id);
    if (this.readableLength > 0) {
      // Data that came before the RST is still the peer's (spdystream hands it
      // to the reader before EOF, and the kubelet writes its failure text just
      // ahead of its RST): destroying now would discard it. Let it be read,
      // then fail; nothing more will arrive, so stop holding the connection.
      this.#pendingReset = error;
      this.#owner.resumeReadingFor(this);
      // After a FIN the read side completes normally; only then go away.
      if (this.#finReceived) this.once('end', () => this.destroy());
      return;
    }
    this.destroy(error);
  }

  /** @internal The connection is gone. */
  abort(error: Error): void {
    this.#resetSeen = true;
    this.destroy(error);
  }

  #markFinReceived(): void {
    this.#finReceived = true;
    this.push(null);
  }
}
