/**
 * SPDY/3.1 codec: dictionary, header blocks and their compression (checked
 * against node:zlib and spdy-transport's dictionary), frame encoders (checked
 * byte for byte against the draft's layout) and the incremental FrameReader.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { SPDY3_DICTIONARY } from '../../src/spdy/dictionary.js';
import { SpdyProtocolError } from '../../src/spdy/errors.js';
import {
  FrameReader,
  dataFrameHeader,
  goawayFrame,
  pingFrame,
  rstStreamFrame,
  settingsFrame,
  synReplyFrame,
  synStreamFrame,
  windowUpdateFrame,
  type Frame,
} from '../../src/spdy/frames.js';
import { HeaderCompressor, HeaderDecompressor, decodeHeaderBlock, encodeHeaderBlock } from '../../src/spdy/header-block.js';
import { FLAG_FIN, FrameType, GoawayCode, RstCode, type SpdyHeaders } from '../../src/spdy/protocol.js';
import { patternBuffer } from '../helpers/spdy-net.js';
import { ZlibHeaderCompressor, ZlibHeaderDecompressor, parseRawHeaderBlock, rawHeaderBlock } from '../helpers/spdy-wire.js';

const require = createRequire(import.meta.url);

function adler32(data: Buffer): number {
  let a = 1;
  let b = 0;
  for (const byte of data) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const PF = { streamtype: 'data', port: '8080', requestid: '0' };

test('dictionary: Adler-32 0xe3c6a7c2, identical to spdy-transport’s SPDY/3 dictionary', () => {
  assert.equal(adler32(SPDY3_DICTIONARY), 0xe3c6a7c2);
  const theirs = require('spdy-transport/lib/spdy-transport/protocol/spdy/dictionary.js') as Record<string, Buffer>;
  assert.ok(theirs['3']);
  assert.equal(SPDY3_DICTIONARY.length, theirs['3'].length);
  assert.ok(SPDY3_DICTIONARY.equals(theirs['3']));
});

test('first compressed block: zlib header with FDICT and DICTID e3c6a7c2', () => {
  const block = new HeaderCompressor().compress(PF);
  const cmf = block[0]!;
  const flg = block[1]!;
  assert.equal(cmf & 0x0f, 8, 'deflate');
  assert.equal((cmf * 256 + flg) % 31, 0, 'FCHECK');
  assert.ok(flg & 0x20, 'FDICT set');
  assert.equal(block.subarray(2, 6).toString('hex'), 'e3c6a7c2');
  // Sync flush: each block ends with the empty stored block 00 00 ff ff.
  assert.equal(block.subarray(-4).toString('hex'), '0000ffff');
});

test('header block layout is 32-bit counts and lengths (hand-written hex)', () => {
  assert.deepEqual(encodeHeaderBlock({ port: '80' }), hex('00000001 00000004 706f7274 00000002 3830'));
  assert.deepEqual(encodeHeaderBlock({}), hex('00000000'));
  assert.deepEqual(decodeHeaderBlock(hex('00000001 00000004 706f7274 00000000')), { port: '' });
});

test('header blocks round-trip (one context per direction, many blocks)', () => {
  const compressor = new HeaderCompressor();
  const decompressor = new HeaderDecompressor();
  const samples: SpdyHeaders[] = [
    PF,
    {},
    { streamtype: 'error', port: '65535', requestid: '4294967295' },
    { ':method': 'POST', ':path': '/x?y', 'x-list': 'a\u0000b\u0000c', empty: '' },
    { 'x-unicode': 'päd ✓ 🐳', 'x-long': 'v'.repeat(20_000) },
    PF,
  ];
  for (let round = 0; round < 3; round++) {
    for (const headers of samples) assert.deepEqual(decompressor.decompress(compressor.compress(headers)), headers);
  }
  // Later blocks reuse the context: a repeated block compresses far better than the first.
  const c2 = new HeaderCompressor();
  const first = c2.compress(PF).length;
  const second = c2.compress(PF).length;
  assert.ok(second < first, `${second} < ${first}`);
});

test('upper-case, duplicate and empty names are rejected', () => {
  const bad: Array<[string, Array<[string, string]>]> = [
    ['upper-case', [['Port', '80']]],
    ['upper-case later', [['port', '80'], ['streamType', 'data']]],
    ['duplicate', [['port', '80'], ['port', '81']]],
    ['empty', [['', 'x']]],
  ];
  for (const [what, pairs] of bad) {
    assert.throws(() => decodeHeaderBlock(rawHeaderBlock(pairs)), SpdyProtocolError, what);
    // Also through the compression layer.
    const compressed = new HeaderCompressor().compress(Object.fromEntries(pairs));
    if (pairs.length === new Set(pairs.map(([n]) => n)).size) {
      assert.throws(() => new HeaderDecompressor().decompress(compressed), SpdyProtocolError, what);
    }
  }
  assert.throws(() => decodeHeaderBlock(hex('00000002 00000001 61 00000000')), /truncated/);
  assert.throws(() => decodeHeaderBlock(hex('00000000 00')), /trailing/);
  assert.throws(() => decodeHeaderBlock(hex('000000')), /truncated/);
});

test('decompression: garbage and oversized blocks are protocol errors', () => {
  assert.throws(() => new HeaderDecompressor().decompress(hex('deadbeef00')), SpdyProtocolError);
  const huge = new HeaderCompressor().compress({ big: 'x'.repeat(300 * 1024) });
  assert.throws(() => new HeaderDecompressor().decompress(huge), /too large/);
});

test('node:zlib (createDeflate + dictionary, Z_SYNC_FLUSH) → HeaderDecompressor', async () => {
  const theirs = new ZlibHeaderCompressor();
  const ours = new HeaderDecompressor();
  try {
    for (let i = 0; i < 20; i++) {
      const headers = { streamtype: i % 2 ? 'data' : 'error', port: String(8000 + i), requestid: String(i), 'x-pad': 'p'.repeat(i * 97) };
      const block = await theirs.compress(headers);
      if (i === 0) assert.equal(block.subarray(2, 6).toString('hex'), 'e3c6a7c2');
      assert.deepEqual(ours.decompress(block), headers);
    }
  } finally {
    theirs.close();
  }
});

test('HeaderCompressor → node:zlib createInflate + dictionary', async () => {
  const ours = new HeaderCompressor();
  const theirs = new ZlibHeaderDecompressor();
  try {
    for (let i = 0; i < 20; i++) {
      const headers = { streamtype: i % 2 ? 'data' : 'error', port: String(9000 + i), requestid: String(i * 7) };
      const raw = await theirs.decompressRaw(ours.compress(headers));
      assert.deepEqual(raw, encodeHeaderBlock(headers));
      assert.deepEqual(parseRawHeaderBlock(raw), headers);
    }
  } finally {
    theirs.close();
  }
});

test('frame encoders produce the draft’s exact bytes', () => {
  // Control frame header: C=1, version 3, type; flags; 24-bit length.
  assert.deepEqual(pingFrame(1), hex('8003 0006 00 000004 00000001'));
  assert.deepEqual(pingFrame(0xfffffffe), hex('8003 0006 00 000004 fffffffe'));
  assert.deepEqual(rstStreamFrame(5, RstCode.CANCEL), hex('8003 0003 00 000008 00000005 00000005'));
  assert.deepEqual(rstStreamFrame(0x7fffffff, RstCode.PROTOCOL_ERROR), hex('8003 0003 00 000008 7fffffff 00000001'));
  assert.deepEqual(goawayFrame(7, GoawayCode.PROTOCOL_ERROR), hex('8003 0007 00 000008 00000007 00000001'));
  assert.deepEqual(windowUpdateFrame(3, 0x10000), hex('8003 0009 00 000008 00000003 00010000'));
  assert.deepEqual(
    settingsFrame([{ id: 7, value: 0x10000, flags: 1 }, { id: 4, value: 100 }]),
    hex('8003 0004 00 000014 00000002 01000007 00010000 00000004 00000064'),
  );
  // SYN_STREAM: stream id, associated id, priority (3 bits) + unused, slot, block.
  assert.deepEqual(synStreamFrame(1, 0, 0, hex('abcd')), hex('8003 0001 00 00000c 00000001 00000000 00 00 abcd'));
  assert.deepEqual(synStreamFrame(3, FLAG_FIN, 7, hex('ab')), hex('8003 0001 01 00000b 00000003 00000000 e0 00 ab'));
  // SYN_REPLY and HEADERS: stream id, block.
  assert.deepEqual(synReplyFrame(1, 0, hex('abcd')), hex('8003 0002 00 000006 00000001 abcd'));
  assert.deepEqual(synReplyFrame(9, FLAG_FIN, hex('ee'), FrameType.HEADERS), hex('8003 0008 01 000005 00000009 ee'));
  // DATA: C=0, stream id; flags; 24-bit length.
  assert.deepEqual(dataFrameHeader(1, true, 0x123456), hex('00000001 01 123456'));
  assert.deepEqual(dataFrameHeader(0x7fffffff, false, 0), hex('7fffffff 00 000000'));
  assert.deepEqual(dataFrameHeader(3, false, 0xffffff), hex('00000003 00 ffffff'));
});

function sampleStream(): { bytes: Buffer; count: number } {
  const compressor = new HeaderCompressor();
  const big = Buffer.alloc(70_000, 0x5a);
  const parts = [
    synStreamFrame(1, 0, 0, compressor.compress(PF)),
    synReplyFrame(1, 0, compressor.compress({})),
    Buffer.concat([dataFrameHeader(1, false, 5), Buffer.from('hello')]),
    Buffer.concat([dataFrameHeader(3, false, big.length), big]),
    pingFrame(2),
    settingsFrame([{ id: 7, value: 1 << 20 }]),
    windowUpdateFrame(0, 1000),
    Buffer.concat([dataFrameHeader(1, true, 0)]),
    rstStreamFrame(3, RstCode.CANCEL),
    goawayFrame(1, 0),
  ];
  return { bytes: Buffer.concat(parts), count: parts.length };
}

function readAll(reader: FrameReader): Frame[] {
  const out: Frame[] = [];
  for (let f = reader.next(); f; f = reader.next()) out.push(f);
  return out;
}

/**
 * DATA payloads come out piecewise as bytes arrive, so consecutive pieces of
 * one stream are joined before comparing (applied alike to every reading).
 */
function normalise(frames: Frame[]): unknown[] {
  const out: Array<{ data: number; fin: boolean; hex: string } | { control: number; flags: number; hex: string }> = [];
  for (const f of frames) {
    const last = out[out.length - 1];
    if (f.type === 'data' && last && 'data' in last && last.data === f.streamId && !last.fin) {
      last.hex += f.data.toString('hex');
      last.fin = f.fin;
    } else if (f.type === 'data') {
      out.push({ data: f.streamId, fin: f.fin, hex: f.data.toString('hex') });
    } else {
      out.push({ control: f.frameType, flags: f.flags, hex: f.payload.toString('hex') });
    }
  }
  return out;
}

test('FrameReader: many frames in one chunk', () => {
  const { bytes, count } = sampleStream();
  const reader = new FrameReader();
  reader.push(bytes);
  const frames = readAll(reader);
  assert.equal(frames.length, count);
  assert.deepEqual(
    frames.map((f) => (f.type === 'data' ? `D${f.streamId}${f.fin ? 'F' : ''}:${f.data.length}` : `C${f.frameType}`)),
    ['C1', 'C2', 'D1:5', 'D3:70000', 'C6', 'C4', 'C9', 'D1F:0', 'C3', 'C7'],
  );
  assert.equal(reader.next(), undefined);
});

test('FrameReader: byte-by-byte arrival and odd chunk sizes give the same frames', () => {
  const { bytes } = sampleStream();
  const whole = new FrameReader();
  whole.push(bytes);
  const expected = normalise(readAll(whole));

  const byteReader = new FrameReader();
  const byByte: Frame[] = [];
  for (let i = 0; i < bytes.length; i++) {
    byteReader.push(bytes.subarray(i, i + 1));
    byByte.push(...readAll(byteReader));
  }
  assert.deepEqual(normalise(byByte), expected);

  for (const size of [3, 7, 8, 9, 1000, 65_537]) {
    const reader = new FrameReader();
    const got: Frame[] = [];
    for (let i = 0; i < bytes.length; i += size) {
      reader.push(bytes.subarray(i, i + size));
      got.push(...readAll(reader));
    }
    assert.deepEqual(normalise(got), expected, `chunk size ${size}`);
  }
});

test('FrameReader: a large control frame arriving byte by byte is joined in linear time', () => {
  // A header block of over 100 KB (base64 of random bytes barely compresses): 100,000+ one-byte chunks.
  const block = new HeaderCompressor().compress({ 'x-big': patternBuffer(120 * 1024, 9).toString('base64') });
  const frame = synReplyFrame(3, 0, block);
  const reader = new FrameReader();
  const started = Date.now();
  const got: Frame[] = [];
  for (let i = 0; i < frame.length; i++) {
    reader.push(frame.subarray(i, i + 1));
    got.push(...readAll(reader));
  }
  const elapsed = Date.now() - started;
  assert.equal(got.length, 1);
  assert.ok(got[0]!.type === 'control' && got[0]!.payload.equals(frame.subarray(8)));
  // ~100 ms when the chunks are joined with one splice; seconds with a shift() per chunk.
  assert.ok(elapsed < 700, `took ${elapsed} ms`);
});

test('FrameReader: unknown control frame types are protocol errors', () => {
  for (const type of [0, 5, 10, 0xf000]) {
    const reader = new FrameReader();
    const frame = Buffer.alloc(12);
    frame.writeUInt16BE(0x8003, 0);
    frame.writeUInt16BE(type, 2);
    frame.writeUInt32BE(4, 4);
    reader.push(frame);
    assert.throws(() => reader.next(), SpdyProtocolError, `type ${type}`);
  }
});
