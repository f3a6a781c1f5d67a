/**
 * SPDY/3.1 frame encoding and incremental decoding. Header blocks are handed
 * over still compressed: the session owns the compression contexts.
 */
import { SpdyProtocolError } from './errors.js';
import { FRAME_HEADER_BYTES, FrameType, MAX_FRAME_PAYLOAD, SPDY_VERSION } from './protocol.js';

export type Frame =
  | { type: 'data'; streamId: number; fin: boolean; data: Buffer }
  | { type: 'control'; frameType: number; flags: number; payload: Buffer };

function controlHeader(frameType: number, flags: number, length: number): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length);
  frame.writeUInt32BE((0x80000000 | (SPDY_VERSION << 16) | frameType) >>> 0, 0);
  frame.writeUInt32BE(((flags << 24) | length) >>> 0, 4);
  return frame;
}

/** The 8-byte header of a DATA frame; the payload follows in a separate write. */
export function dataFrameHeader(streamId: number, fin: boolean, length: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header.writeUInt32BE(streamId & 0x7fffffff, 0);
  header.writeUInt32BE((((fin ? 1 : 0) << 24) | length) >>> 0, 4);
  return header;
}

/**
 * +------------------------------------+
 * |X|           Stream-ID (31bits)     |
 * +------------------------------------+
 * |X| Associated-To-Stream-ID (31bits) |
 * +------------------------------------+
 * | Pri|Unused | Slot |                |
 * +-------------------+                |
 * | compressed name/value header block |
 */
export function synStreamFrame(streamId: number, flags: number, priority: number, block: Buffer): Buffer {
  const frame = controlHeader(FrameType.SYN_STREAM, flags, 10 + block.length);
  frame.writeUInt32BE(streamId, 8);
  frame.writeUInt32BE(0, 12);
  frame.writeUInt8((priority & 0x7) << 5, 16);
  frame.writeUInt8(0, 17);
  block.copy(frame, 18);
  return frame;
}

/** SYN_REPLY and HEADERS share a layout: stream id, then the header block. */
export function synReplyFrame(streamId: number, flags: number, block: Buffer, frameType: number = FrameType.SYN_REPLY): Buffer {
  const frame = controlHeader(frameType, flags, 4 + block.length);
  frame.writeUInt32BE(streamId, 8);
  block.copy(frame, 12);
  return frame;
}

export function rstStreamFrame(streamId: number, status: number): Buffer {
  const frame = controlHeader(FrameType.RST_STREAM, 0, 8);
  frame.writeUInt32BE(streamId, 8);
  frame.writeUInt32BE(status, 12);
  return frame;
}

export function pingFrame(id: number): Buffer {
  const frame = controlHeader(FrameType.PING, 0, 4);
  frame.writeUInt32BE(id >>> 0, 8);
  return frame;
}

export function goawayFrame(lastGoodStreamId: number, status: number): Buffer {
  const frame = controlHeader(FrameType.GOAWAY, 0, 8);
  frame.writeUInt32BE(lastGoodStreamId, 8);
  frame.writeUInt32BE(status, 12);
  return frame;
}

export function settingsFrame(entries: Array<{ id: number; value: number; flags?: number }>): Buffer {
  const frame = controlHeader(FrameType.SETTINGS, 0, 4 + 8 * entries.length);
  frame.writeUInt32BE(entries.length, 8);
  entries.forEach((entry, i) => {
    frame.writeUInt32BE((((entry.flags ?? 0) << 24) | entry.id) >>> 0, 12 + 8 * i);
    frame.writeUInt32BE(entry.value >>> 0, 16 + 8 * i);
  });
  return frame;
}

export function windowUpdateFrame(streamId: number, delta: number): Buffer {
  const frame = controlHeader(FrameType.WINDOW_UPDATE, 0, 8);
  frame.writeUInt32BE(streamId, 8);
  frame.writeUInt32BE(delta, 12);
  return frame;
}

/**
 * Cuts a byte stream into frames. Payloads that arrived in one chunk are
 * sliced, not copied; only frames split across chunks are joined.
 */
export class FrameReader {
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** Payload bytes of the current DATA frame not yet handed out. */
  #dataLeft = 0;
  #dataStreamId = 0;
  #dataFin = false;

  push(chunk: Buffer): void {
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
  }

  /**
   * The next frame, or undefined when more bytes are needed. DATA payloads
   * are handed out piecewise as they arrive (each piece a DATA "frame" whose
   * `fin` is set on the last one): a 64 KiB frame never fits one 64 KiB
   * socket read, and joining the halves would copy every byte.
   */
  next(): Frame | undefined {
    if (this.#dataLeft > 0) return this.#nextDataPiece();
    if (this.#pendingBytes < FRAME_HEADER_BYTES) return undefined;
    let head = this.#pending[0]!;
    if (head.length < FRAME_HEADER_BYTES) head = this.#coalesce(FRAME_HEADER_BYTES);
    const word0 = head.readUInt32BE(0);
    const flags = head[4]!;
    const length = head.readUInt32BE(4) & MAX_FRAME_PAYLOAD;

    if ((word0 & 0x80000000) === 0) {
      this.#consume(FRAME_HEADER_BYTES);
      this.#dataStreamId = word0 & 0x7fffffff;
      this.#dataFin = (flags & 0x01) !== 0;
      this.#dataLeft = length;
      if (length === 0) return { type: 'data', streamId: this.#dataStreamId, fin: this.#dataFin, data: Buffer.alloc(0) };
      return this.#nextDataPiece();
    }

    const total = FRAME_HEADER_BYTES + length;
    if (this.#pendingBytes < total) return undefined;
    if (head.length < total) head = this.#coalesce(total);
    const payload = head.subarray(FRAME_HEADER_BYTES, total);
    this.#consume(total);
    // spdystream's framer does not check the version field either; any
    // unknown frame type, though, is fatal there and here.
    const frameType = word0 & 0xffff;
    if (frameType < FrameType.SYN_STREAM || frameType > FrameType.WINDOW_UPDATE || frameType === 5) {
      throw new SpdyProtocolError(`unknown control frame type ${frameType}`);
    }
    return { type: 'control', frameType, flags, payload };
  }

  #nextDataPiece(): Frame | undefined {
    const head = this.#pending[0];
    if (!head) return undefined;
    const take = Math.min(head.length, this.#dataLeft);
    const data = take === head.length ? head : head.subarray(0, take);
    this.#consume(take);
    this.#dataLeft -= take;
    return { type: 'data', streamId: this.#dataStreamId, fin: this.#dataLeft === 0 && this.#dataFin, data };
  }

  /** Joins the first buffers so that the head holds at least `bytes`. */
  #coalesce(bytes: number): Buffer {
    // One splice, not a shift() per part: a frame that arrived in many small
    // chunks would otherwise cost O(chunks²) (70 KB byte by byte: seconds).
    let have = 0;
    let count = 0;
    while (have < bytes) have += this.#pending[count++]!.length;
    const joined = Buffer.concat(this.#pending.splice(0, count), have);
    this.#pending.unshift(joined);
    return joined;
  }

  #consume(bytes: number): void {
    const head = this.#pending[0]!;
    this.#pendingBytes -= bytes;
    if (head.length === bytes) this.#pending.shift();
    else this.#pending[0] = head.subarray(bytes);
  }
}
