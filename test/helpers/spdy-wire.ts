/**
 * An independent view of the SPDY/3.1 wire for the tests: a frame parser
 * written straight from the draft (not src/spdy/frames.ts), header-block
 * compression with node:zlib (not pako), a tap that records every frame a
 * socket receives, and a raw peer that speaks hand-built frames.
 */
import { once } from 'node:events';
import type * as net from 'node:net';
import * as zlib from 'node:zlib';
import { SPDY3_DICTIONARY } from '../../src/spdy/dictionary.js';
import type { SpdyHeaders } from '../../src/spdy/protocol.js';

export const TYPE = {
  DATA: 0,
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  NOOP: 5,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

export interface WireFrame {
  control: boolean;
  /** Control frame type; 0 for DATA. */
  type: number;
  version: number;
  flags: number;
  length: number;
  /** DATA, SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS, WINDOW_UPDATE: the stream id. PING: the ping id. */
  streamId: number;
  /** RST_STREAM / GOAWAY status; WINDOW_UPDATE delta. */
  status?: number;
  /** Control frames only (DATA payloads are not kept). */
  payload?: Buffer;
}

/** Splits a byte stream into frames, straight from the draft's layout. */
export class WireParser {
  #buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): WireFrame[] {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const frames: WireFrame[] = [];
    while (this.#buffer.length >= 8) {
      const b = this.#buffer;
      const length = (b[5]! << 16) | (b[6]! << 8) | b[7]!;
      if (b.length < 8 + length) break;
      const control = (b[0]! & 0x80) !== 0;
      const flags = b[4]!;
      const body = b.subarray(8, 8 + length);
      if (control) {
        const version = ((b[0]! & 0x7f) << 8) | b[1]!;
        const type = (b[2]! << 8) | b[3]!;
        const frame: WireFrame = { control, type, version, flags, length, streamId: 0, payload: Buffer.from(body) };
        if (length >= 4) frame.streamId = type === TYPE.PING ? body.readUInt32BE(0) : body.readUInt32BE(0) & 0x7fffffff;
        if ((type === TYPE.RST_STREAM || type === TYPE.GOAWAY || type === TYPE.WINDOW_UPDATE) && length >= 8) {
          frame.status = body.readUInt32BE(4);
        }
        frames.push(frame);
      } else {
        frames.push({ control, type: TYPE.DATA, version: 0, flags, length, streamId: b.readUInt32BE(0) & 0x7fffffff });
      }
      this.#buffer = b.subarray(8 + length);
    }
    return frames;
  }
}

/** Serialises an uncompressed name/value block (32-bit counts and lengths), without any checks. */
export function rawHeaderBlock(pairs: Array<[string, string]>): Buffer {
  const parts: Buffer[] = [u32(pairs.length)];
  for (const [name, value] of pairs) {
    const n = Buffer.from(name);
    const v = Buffer.from(value);
    parts.push(u32(n.length), n, u32(v.length), v);
  }
  return Buffer.concat(parts);
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0);
  return b;
}

/** Parses an uncompressed name/value block (lenient: for inspecting what was sent). */
export function parseRawHeaderBlock(block: Buffer): SpdyHeaders {
  const headers: SpdyHeaders = {};
  let offset = 4;
  const count = block.readUInt32BE(0);
  for (let i = 0; i < count; i++) {
    const nl = block.readUInt32BE(offset);
    const name = block.toString('utf8', offset + 4, offset + 4 + nl);
    offset += 4 + nl;
    const vl = block.readUInt32BE(offset);
    headers[name] = block.toString('utf8', offset + 4, offset + 4 + vl);
    offset += 4 + vl;
  }
  if (offset !== block.length) throw new Error('trailing bytes in header block');
  return headers;
}

/** Runs one zlib transform per call, sync-flushed, serialised (one context per direction). */
class ZlibContext {
  readonly #stream: zlib.Deflate | zlib.Inflate;
  #chain: Promise<unknown> = Promise.resolve();
  #pending: Buffer[] = [];

  constructor(stream: zlib.Deflate | zlib.Inflate) {
    this.#stream = stream;
    stream.on('data', (chunk: Buffer) => this.#pending.push(chunk));
  }

  run(input: Buffer): Promise<Buffer> {
    const result = this.#chain.then(
      () =>
        new Promise<Buffer>((resolve, reject) => {
          const onError = (error: Error): void => reject(error);
          this.#stream.once('error', onError);
          this.#stream.write(input);
          this.#stream.flush(zlib.constants.Z_SYNC_FLUSH, () => {
            // Let the flushed output reach the 'data' listener first.
            setImmediate(() => {
              this.#stream.off('error', onError);
              const out = Buffer.concat(this.#pending);
              this.#pending = [];
              resolve(out);
            });
          });
        }),
    );
    this.#chain = result.catch(() => {});
    return result;
  }

  close(): void {
    this.#stream.destroy();
  }
}

/** node:zlib deflate primed with the SPDY dictionary. */
export class ZlibHeaderCompressor {
  readonly #ctx = new ZlibContext(zlib.createDeflate({ dictionary: SPDY3_DICTIONARY }));
  compressRaw(block: Buffer): Promise<Buffer> {
    return this.#ctx.run(block);
  }
  compress(headers: SpdyHeaders | Array<[string, string]>): Promise<Buffer> {
    return this.#ctx.run(rawHeaderBlock(Array.isArray(headers) ? headers : Object.entries(headers)));
  }
  close(): void {
    this.#ctx.close();
  }
}

/** node:zlib inflate primed with the SPDY dictionary. */
export class ZlibHeaderDecompressor {
  readonly #ctx = new ZlibContext(zlib.createInflate({ dictionary: SPDY3_DICTIONARY }));
  decompressRaw(block: Buffer): Promise<Buffer> {
    return this.#ctx.run(block);
  }
  async decompress(block: Buffer): Promise<SpdyHeaders> {
    return parseRawHeaderBlock(await this.#ctx.run(block));
  }
  close(): void {
    this.#ctx.close();
  }
}

const HEADER_FRAME_TYPES = new Set<number>([TYPE.SYN_STREAM, TYPE.SYN_REPLY, TYPE.HEADERS]);

/**
 * Records every frame a socket receives (i.e. every frame its peer sent),
 * from a second 'data' listener: the session under test is not touched.
 */
export class FrameTap {
  readonly frames: WireFrame[] = [];
  readonly #parser = new WireParser();

  constructor(socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.frames.push(...this.#parser.push(chunk)));
  }

  ofType(type: number): WireFrame[] {
    return this.frames.filter((f) => f.control === (type !== TYPE.DATA) && f.type === type);
  }

  /** RST_STREAM frames as [streamId, status]. */
  resets(): Array<[number, number]> {
    return this.ofType(TYPE.RST_STREAM).map((f) => [f.streamId, f.status ?? -1]);
  }

  dataBytes(streamId?: number): number {
    return this.ofType(TYPE.DATA)
      .filter((f) => streamId === undefined || f.streamId === streamId)
      .reduce((sum, f) => sum + f.length, 0);
  }

  /** Decodes every header block seen so far, in order, with node:zlib (one context). */
  async headerBlocks(): Promise<Array<{ type: number; streamId: number; flags: number; headers: SpdyHeaders }>> {
    const inflater = new ZlibHeaderDecompressor();
    try {
      const out = [];
      for (const frame of this.frames) {
        if (!frame.control || !HEADER_FRAME_TYPES.has(frame.type)) continue;
        const skip = frame.type === TYPE.SYN_STREAM ? 10 : 4;
        out.push({ type: frame.type, streamId: frame.streamId, flags: frame.flags, headers: await inflater.decompress(frame.payload!.subarray(skip)) });
      }
      return out;
    } finally {
      inflater.close();
    }
  }
}

/** Hand-built control frames (version 3), independent of src/spdy/frames.ts. */
export function controlFrame(type: number, flags: number, body: Buffer, version = 3): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16BE(0x8000 | version, 0);
  head.writeUInt16BE(type, 2);
  head.writeUInt32BE(((flags << 24) | body.length) >>> 0, 4);
  return Buffer.concat([head, body]);
}

export function dataFrame(streamId: number, data: Buffer, fin = false): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(streamId & 0x7fffffff, 0);
  head.writeUInt32BE((((fin ? 1 : 0) << 24) | data.length) >>> 0, 4);
  return Buffer.concat([head, data]);
}

/**
 * A SPDY peer made of a bare socket: it sends whatever frames a test builds
 * and records what it receives. Never answers anything by itself.
 */
export class RawPeer {
  readonly socket: net.Socket;
  readonly tap: FrameTap;
  readonly compressor = new ZlibHeaderCompressor();
  readonly closed: Promise<void>;
  #closedFlag = false;

  constructor(socket: net.Socket) {
    this.socket = socket;
    this.tap = new FrameTap(socket);
    socket.on('error', () => {});
    this.closed = once(socket, 'close').then(() => {
      this.#closedFlag = true;
    });
  }

  get isClosed(): boolean {
    return this.#closedFlag;
  }

  send(frame: Buffer): void {
    this.socket.write(frame);
  }

  async synStream(streamId: number, headers: SpdyHeaders | Array<[string, string]>, flags = 0): Promise<void> {
    const block = await this.compressor.compress(headers);
    const body = Buffer.concat([u32(streamId), u32(0), Buffer.from([0, 0]), block]);
    this.send(controlFrame(TYPE.SYN_STREAM, flags, body));
  }

  async synReply(streamId: number, headers: SpdyHeaders, flags = 0): Promise<void> {
    const block = await this.compressor.compress(headers);
    this.send(controlFrame(TYPE.SYN_REPLY, flags, Buffer.concat([u32(streamId), block])));
  }

  ping(id: number, flags = 0): void {
    this.send(controlFrame(TYPE.PING, flags, u32(id)));
  }

  rst(streamId: number, status: number): void {
    this.send(controlFrame(TYPE.RST_STREAM, 0, Buffer.concat([u32(streamId), u32(status)])));
  }

  goaway(lastGood: number, status: number): void {
    this.send(controlFrame(TYPE.GOAWAY, 0, Buffer.concat([u32(lastGood), u32(status)])));
  }

  /** Resolves with the first received frame matching `predicate` (including ones already seen). */
  async waitFrame(predicate: (frame: WireFrame) => boolean, timeoutMs = 2000): Promise<WireFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.tap.frames.find(predicate);
      if (found) return found;
      if (Date.now() > deadline) throw new Error('timed out waiting for a frame from the session');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  destroy(): void {
    this.compressor.close();
    this.socket.destroy();
  }
}
