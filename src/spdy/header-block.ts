/**
 * SPDY/3 name/value header blocks (draft 3.1, section 2.6.10) and their zlib
 * compression: one compression context per direction per connection, primed
 * with the SPDY dictionary, each block ended with a sync flush so the peer can
 * decode it at once.
 *
 * +------------------------------------+
 * | Number of Name/Value pairs (int32) |
 * +------------------------------------+
 * |     Length of name (int32)         |
 * +------------------------------------+
 * |           Name (string)            |
 * +------------------------------------+
 * |     Length of value  (int32)       |
 * +------------------------------------+
 * |          Value   (string)          |   (several values: NUL-separated)
 * +------------------------------------+
 *
 * pako rather than node:zlib: its streaming API is synchronous, so a frame can
 * be decoded completely before the next one is looked at; node:zlib's
 * persistent contexts are asynchronous only.
 */
import { Deflate, Inflate, Z_OK, Z_SYNC_FLUSH } from 'pako';
import { SPDY3_DICTIONARY } from './dictionary.js';
import { SpdyProtocolError } from './errors.js';
import type { SpdyHeaders } from './protocol.js';

/** Header blocks above this size (decompressed) are refused: nothing in port-forward comes close. */
const MAX_DECOMPRESSED_BLOCK = 256 * 1024;

export function encodeHeaderBlock(headers: SpdyHeaders): Buffer {
  const entries = Object.entries(headers);
  let size = 4;
  const encoded = entries.map(([name, value]) => {
    const n = Buffer.from(name, 'utf8');
    const v = Buffer.from(value, 'utf8');
    size += 8 + n.length + v.length;
    return [n, v] as const;
  });
  const block = Buffer.allocUnsafe(size);
  let offset = block.writeUInt32BE(entries.length, 0);
  for (const [n, v] of encoded) {
    offset = block.writeUInt32BE(n.length, offset);
    offset += n.copy(block, offset);
    offset = block.writeUInt32BE(v.length, offset);
    offset += v.copy(block, offset);
  }
  return block;
}

/**
 * Parses a decompressed block. As in spdystream's framer, an upper-case or
 * duplicate name is a protocol error (which tears down the connection).
 */
export function decodeHeaderBlock(block: Buffer): SpdyHeaders {
  const headers: SpdyHeaders = {};
  let offset = 0;
  const readLength = (): number => {
    if (offset + 4 > block.length) throw new SpdyProtocolError('truncated header block');
    const length = block.readUInt32BE(offset);
    offset += 4;
    return length;
  };
  const readString = (): string => {
    const length = readLength();
    if (offset + length > block.length) throw new SpdyProtocolError('truncated header block');
    const value = block.toString('utf8', offset, offset + length);
    offset += length;
    return value;
  };
  const count = readLength();
  for (let i = 0; i < count; i++) {
    const name = readString();
    if (name.length === 0) throw new SpdyProtocolError('empty header name');
    if (name !== name.toLowerCase()) throw new SpdyProtocolError(`header name "${name}" is not lower-case`);
    if (Object.hasOwn(headers, name)) throw new SpdyProtocolError(`duplicate header "${name}"`);
    headers[name] = readString();
  }
  if (offset !== block.length) throw new SpdyProtocolError('trailing bytes after header block');
  return headers;
}

/** The sending side's compression context. */
export class HeaderCompressor {
  readonly #deflate = new Deflate({ dictionary: SPDY3_DICTIONARY });
  #output: Uint8Array[] = [];

  constructor() {
    this.#deflate.onData = (chunk) => this.#output.push(chunk);
  }

  compress(headers: SpdyHeaders): Buffer {
    this.#output = [];
    this.#deflate.push(encodeHeaderBlock(headers), Z_SYNC_FLUSH);
    if (this.#deflate.err !== Z_OK) throw new SpdyProtocolError(`header compression failed: ${this.#deflate.msg}`);
    return Buffer.concat(this.#output);
  }
}

/** The receiving side's decompression context. Every block must pass through it, in order. */
export class HeaderDecompressor {
  readonly #inflate = new Inflate({ dictionary: SPDY3_DICTIONARY });
  #output: Uint8Array[] = [];
  #outputBytes = 0;

  constructor() {
    this.#inflate.onData = (chunk) => {
      this.#outputBytes += chunk.length;
      if (this.#outputBytes <= MAX_DECOMPRESSED_BLOCK) this.#output.push(chunk);
    };
  }

  decompress(compressed: Buffer): SpdyHeaders {
    this.#output = [];
    this.#outputBytes = 0;
    this.#inflate.push(compressed, Z_SYNC_FLUSH);
    if (this.#inflate.err !== Z_OK) {
      throw new SpdyProtocolError(`header block does not decompress: ${this.#inflate.msg || this.#inflate.err}`);
    }
    if (this.#outputBytes > MAX_DECOMPRESSED_BLOCK) throw new SpdyProtocolError('header block too large');
    return decodeHeaderBlock(Buffer.concat(this.#output));
  }
}
