/**
 * SpdySession client ↔ SpdySession server over real loopback TCP, plus a raw
 * socket peer for the framing errors spdystream treats as fatal. Every frame
 * on the wire is also read by an independent parser (helpers/spdy-wire.ts).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { KubesocksError } from '../../src/errors.js';
import { SpdyProtocolError, StreamResetError } from '../../src/spdy/errors.js';
import { RstCode } from '../../src/spdy/protocol.js';
import type { SpdyStream } from '../../src/spdy/stream.js';
import { collect, drain, patternBuffer, pump, readBytes, sleep, waitFor, within } from '../helpers/spdy-net.js';
import { nextStream, sessionClosed, sessionPair, sessionWithRawPeer } from '../helpers/spdy-pair.js';
import { TYPE, controlFrame, dataFrame } from '../helpers/spdy-wire.js';

const PF = (requestid: string, streamtype = 'data', port = '8080') => ({ streamtype, port, requestid });
const MiB = 1024 * 1024;

function streamError(stream: SpdyStream): Promise<Error> {
  return once(stream, 'error').then(([error]) => error as Error);
}

test('open a stream: headers arrive, SYN_REPLY carries no :status', async (t) => {
  const p = await sessionPair();
  t.after(() => p.close());
  const incoming = nextStream(p.server);
  const cs = p.client.openStream(PF('0', 'error'));
  assert.equal(cs.id, 1);
  const ss = await incoming;
  assert.equal(ss.id, 1);
  assert.deepEqual(ss.headers, PF('0', 'error'));
  const replied = once(cs, 'reply');
  ss.reply();
  const [reply] = await replied;
  assert.deepEqual(reply, {});
  assert.deepEqual(cs.replyHeaders, {});
  const second = nextStream(p.server);
  const cs2 = p.client.openStream(PF('0'));
  assert.equal(cs2.id, 3, 'client ids are odd and increasing');
  (await second).reply();
  await once(cs2, 'reply');

  // What went on the wire, decoded by node:zlib: exactly these headers, flags 0, nothing else.
  const sent = await p.fromClient.headerBlocks();
  assert.deepEqual(sent.map((b) => [b.type, b.streamId, b.flags, b.headers]), [
    [TYPE.SYN_STREAM, 1, 0, PF('0', 'error')],
    [TYPE.SYN_STREAM, 3, 0, PF('0')],
  ]);
  const replies = await p.fromServer.headerBlocks();
  assert.deepEqual(replies.map((b) => [b.type, b.streamId, b.headers]), [
    [TYPE.SYN_REPLY, 1, {}],
    [TYPE.SYN_REPLY, 3, {}],
  ]);
});

test('data both ways and half-close; no RST after a clean double FIN', async (t) => {
  const p = await sessionPair();
  t.after(() => p.close());
  const incoming = nextStream(p.server);
  const cs = p.client.openStream(PF('1'));
  const ss = await incoming;
  ss.reply();

  cs.write('hello ');
  cs.end('server');
  const upload = await collect(ss);
  assert.equal(upload.toString(), 'hello server', 'server saw the client FIN');
  assert.ok(!ss.writableEnded, 'server can still write after the client half-closed');

  const download = collect(cs);
  ss.write('hi ');
  await sleep(20);
  ss.end('client');
  assert.equal((await download).toString(), 'hi client');

  await waitFor(() => p.client.streamCount === 0 && p.server.streamCount === 0, 2000, 'streams forgotten');
  await sleep(30);
  assert.deepEqual(p.fromClient.resets(), []);
  assert.deepEqual(p.fromServer.resets(), []);
  const fins = (tap: typeof p.fromClient) => tap.ofType(TYPE.DATA).filter((f) => f.flags & 1);
  assert.equal(fins(p.fromClient).length, 1);
  assert.equal(fins(p.fromServer).length, 1);
});

test('RST from the client surfaces on the server as StreamResetError (CANCEL)', async (t) => {
  const p = await sessionPair();
  t.after(() => p.close());
  const incoming = nextStream(p.server);
  const cs = p.client.openStream(PF('2'));
  const ss = await incoming;
  ss.reply();
  const failed = streamError(ss);
  cs.destroy(); // an early destroy is spdystream's Reset(): RST CANCEL
  const error = await failed;
  assert.ok(error instanceof StreamResetError);
  assert.equal(error.status, RstCode.CANCEL);
  assert.equal((error as StreamResetError).code, 'STREAM_RESET');
  assert.deepEqual(p.fromClient.resets(), [[1, RstCode.CANCEL]]);
  await waitFor(() => p.server.streamCount === 0 && p.client.streamCount === 0);
  assert.deepEqual(p.fromServer.resets(), [], 'no RST answered to an RST');
});

test('RST from the server surfaces on the client with its status; explicit reset() sends one RST', async (t) => {
  const p = await sessionPair();
  t.after(() => p.close());
  const incoming = nextStream(p.server);
  const cs = p.client.openStream(PF('3'));
  const ss = await incoming;
  ss.reply();
  await once(cs, 'reply');
  const failed = streamError(cs);
  ss.reset(RstCode.REFUSED_STREAM);
  const error = await failed;
  assert.ok(error instanceof StreamResetError);
  assert.equal(error.status, RstCode.REFUSED_STREAM);
  assert.match(error.message, /REFUSED_STREAM/);
  assert.ok(ss.destroyed);
  await waitFor(() => p.client.streamCount === 0 && p.server.streamCount === 0);
  await sleep(20);
  assert.deepEqual(p.fromServer.resets(), [[1, RstCode.REFUSED_STREAM]]);
  assert.deepEqual(p.fromClient.resets(), []);
});

test('10 MiB up and 10 MiB down per stream, never a SETTINGS or WINDOW_UPDATE', async (t) => {
  const p = await sessionPair();
  t.after(() => p.close());
  const size = 10 * MiB;
  const serverDone: Array<Promise<{ got: Awaited<ReturnType<typeof drain>>; sent: Awaited<ReturnType<typeof pump>> }>> = [];
  p.server.on('stream', (ss) => {
    ss.reply();
    serverDone.push(Promise.all([drain(ss), pump(ss, size, { seed: 100 + ss.id })]).then(([got, sent]) => ({ got, sent })));
  });
  const streams = [1, 2, 3].map((i) => p.client.openStream(PF(String(i))));
  const clientResults = await within(
    Promise.all(streams.map((cs) => Promise.all([pump(cs, size, { seed: 200 + cs.id }), drain(cs)]))),
    15_000,
    '30 MiB each way',
  );
  const serverResults = await Promise.all(serverDone);
  for (const [i, [sent, got]] of clientResults.entries()) {
    const server = serverResults[i]!;
    assert.equal(server.got.bytes, size);
    assert.equal(server.got.sha256, sent.sha256, 'upload intact');
    assert.equal(got.bytes, size);
    assert.equal(got.sha256, server.sent.sha256, 'download intact');
  }
  for (const tap of [p.fromClient, p.fromServer]) {
    assert.equal(tap.ofType(TYPE.SETTINGS).length, 0);
    assert.equal(tap.ofType(TYPE.WINDOW_UPDATE).length, 0);
    assert.equal(tap.dataBytes(), 3 * size);
    assert.ok(Math.max(...tap.ofType(TYPE.DATA).map((f) => f.length)) <= 64 * 1024, 'DATA frames ≤ 64 KiB');
  }
});

test('200 concurrent streams, header contexts stay in step', async (t) => {
  const p = await sessionPair();
  t.after(() => p.close());
  p.server.on('stream', (ss) => {
    ss.reply({});
    ss.pipe(ss); // echo, FIN when the client FINs
  });
  const n = 200;
  const results = await within(
    Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const cs = p.client.openStream(PF(String(i), 'data', String(1 + i)));
        const payload = patternBuffer(8 * 1024 + i, i + 1);
        const echoed = collect(cs);
        cs.end(payload);
        return (await echoed).equals(payload);
      }),
    ),
    10_000,
    '200 echoes',
  );
  assert.ok(results.every(Boolean));
  const blocks = await p.fromClient.headerBlocks();
  assert.equal(blocks.length, n);
  blocks.forEach((b, i) => {
    assert.equal(b.streamId, 2 * i + 1);
    assert.deepEqual(b.headers, PF(String(i), 'data', String(1 + i)));
  });
  await waitFor(() => p.client.streamCount === 0 && p.server.streamCount === 0, 3000, 'all streams closed');
  assert.deepEqual(p.fromClient.resets(), []);
  assert.deepEqual(p.fromServer.resets(), []);
});

test('PING round trip both ways (client ids odd, server ids even, peers echo)', async (t) => {
  const p = await sessionPair();
  t.after(() => p.close());
  const rtt1 = await within(p.client.ping(), 1000, 'client ping');
  const rtt2 = await within(p.client.ping(), 1000, 'client ping');
  const rtt3 = await within(p.server.ping(), 1000, 'server ping');
  for (const rtt of [rtt1, rtt2, rtt3]) assert.ok(rtt >= 0 && rtt < 1000);
  assert.deepEqual(p.fromClient.ofType(TYPE.PING).map((f) => f.streamId), [1, 3, 2]);
  assert.deepEqual(p.fromServer.ofType(TYPE.PING).map((f) => f.streamId), [1, 3, 2]);
});

test('peer pings are echoed once; our own parity is not echoed', async (t) => {
  const { session, peer, close } = await sessionWithRawPeer('server');
  t.after(close);
  peer.ping(7); // client parity: the server echoes it
  peer.ping(8); // server parity, unknown id: dropped
  peer.ping(9);
  await peer.waitFrame((f) => f.type === TYPE.PING && f.streamId === 9);
  await sleep(30);
  assert.deepEqual(peer.tap.ofType(TYPE.PING).map((f) => f.streamId), [7, 9]);
  assert.ok(!session.closed);
});

test('ping timeout closes a session whose peer never answers', async (t) => {
  const { session, peer, close } = await sessionWithRawPeer('client', { pingIntervalMs: 40, pingTimeoutMs: 150 });
  t.after(close);
  const stream = session.openStream(PF('0'));
  const streamFailed = streamError(stream);
  const started = Date.now();
  const error = await within(sessionClosed(session), 2000, 'ping timeout');
  assert.ok(error instanceof KubesocksError);
  assert.equal(error.code, 'CONNECTION_LOST');
  assert.match(error.message, /no answer to PING/);
  assert.ok(Date.now() - started >= 150);
  assert.equal((await streamFailed as KubesocksError).code, 'CONNECTION_LOST');
  const ids = peer.tap.ofType(TYPE.PING).map((f) => f.streamId);
  assert.ok(ids.length >= 1 && ids.every((id) => id % 2 === 1), `odd ping ids: ${ids}`);
  await within(peer.closed, 1000, 'socket closed');
});

test('an upper-case header name from the peer tears down the connection', async (t) => {
  const { session, peer, close } = await sessionWithRawPeer('server');
  t.after(close);
  session.on('stream', () => assert.fail('no stream may be accepted'));
  const closed = sessionClosed(session);
  await peer.synStream(1, [['streamType', 'data'], ['port', '80'], ['requestid', '0']]);
  const error = await within(closed, 1000, 'close');
  assert.ok(error instanceof SpdyProtocolError);
  assert.equal(error.code, 'PROTOCOL_ERROR');
  assert.match(error.message, /streamType/);
  await within(peer.closed, 1000, 'socket closed');
});

test('a non-increasing (or wrong-parity) stream id gets RST PROTOCOL_ERROR; the connection lives on', async (t) => {
  const { session, peer, close } = await sessionWithRawPeer('server');
  t.after(close);
  const accepted: number[] = [];
  session.on('stream', (s) => {
    accepted.push(s.id);
    s.on('error', () => {});
    s.reply();
  });
  await peer.synStream(5, PF('a'));
  await peer.synStream(3, PF('b')); // lower
  await peer.synStream(5, PF('c')); // equal
  await peer.synStream(6, PF('d')); // even id from a client
  await peer.synStream(7, PF('e')); // fine: the zlib context survived the rejected blocks
  await peer.waitFrame((f) => f.type === TYPE.SYN_REPLY && f.streamId === 7);
  assert.deepEqual(accepted, [5, 7]);
  assert.deepEqual(peer.tap.resets(), [
    [3, RstCode.PROTOCOL_ERROR],
    [5, RstCode.PROTOCOL_ERROR],
    [6, RstCode.PROTOCOL_ERROR],
  ]);
  assert.ok(!session.closed);
  assert.equal(session.streamCount, 2);
});

test('PING id 0 is fatal', async (t) => {
  const { session, peer, close } = await sessionWithRawPeer('server');
  t.after(close);
  const closed = sessionClosed(session);
  peer.ping(0);
  const error = await within(closed, 1000, 'close');
  assert.ok(error instanceof SpdyProtocolError);
  assert.match(error.message, /PING/);
  await within(peer.closed, 1000, 'socket closed');
});

test('GOAWAY from the peer closes every stream', async (t) => {
  const { session, peer, close } = await sessionWithRawPeer('client');
  t.after(close);
  const streams = [session.openStream(PF('0', 'error')), session.openStream(PF('0')), session.openStream(PF('1', 'error'))];
  const errors = streams.map(streamError);
  await peer.waitFrame((f) => f.type === TYPE.SYN_STREAM && f.streamId === 5);
  await peer.synReply(1, {});
  const closed = sessionClosed(session);
  peer.goaway(0, 0);
  const error = await within(closed, 1000, 'close');
  assert.equal(error?.code, 'CONNECTION_LOST');
  assert.match(error?.message ?? '', /GOAWAY/);
  for (const e of await Promise.all(errors)) assert.equal((e as KubesocksError).code, 'CONNECTION_LOST');
  assert.equal(session.streamCount, 0);
  assert.throws(() => session.openStream(PF('2')), KubesocksError);
  await within(peer.closed, 1000, 'socket closed');
  assert.equal(peer.tap.ofType(TYPE.GOAWAY).length, 0, 'we never send GOAWAY');
});

test('unknown control frame types are fatal (NOOP 5, 10, 0xf000)', async (t) => {
  for (const type of [5, 10, 0xf000]) {
    const { session, peer, close } = await sessionWithRawPeer('server');
    t.after(close);
    const closed = sessionClosed(session);
    peer.send(controlFrame(type, 0, Buffer.alloc(4)));
    const error = await within(closed, 1000, `type ${type}`);
    assert.ok(error instanceof SpdyProtocolError, `type ${type}`);
    await within(peer.closed, 1000, 'socket closed');
  }
});

test('DATA for an unknown stream is dropped silently; DATA on stream 0 is fatal', async (t) => {
  const { session, peer, close } = await sessionWithRawPeer('server');
  t.after(close);
  peer.send(dataFrame(99, Buffer.from('nobody')));
  peer.ping(1);
  await peer.waitFrame((f) => f.type === TYPE.PING && f.streamId === 1);
  assert.ok(!session.closed);
  assert.deepEqual(peer.tap.resets(), []);
  const closed = sessionClosed(session);
  peer.send(dataFrame(0, Buffer.from('x')));
  assert.ok((await within(closed, 1000, 'close')) instanceof SpdyProtocolError);
});

test('SETTINGS and WINDOW_UPDATE from the peer are read and dropped', async (t) => {
  const { session, peer, close } = await sessionWithRawPeer('server');
  t.after(close);
  session.on('stream', (s) => {
    s.reply();
    s.pipe(s);
  });
  const settings = Buffer.alloc(12);
  settings.writeUInt32BE(1, 0);
  settings.writeUInt32BE(7, 4);
  settings.writeUInt32BE(0x10000, 8);
  peer.send(controlFrame(TYPE.SETTINGS, 0, settings));
  const wu = Buffer.alloc(8);
  wu.writeUInt32BE(0, 0);
  wu.writeUInt32BE(0x7fff0000, 4);
  peer.send(controlFrame(TYPE.WINDOW_UPDATE, 0, wu));
  await peer.synStream(1, PF('0'));
  // 200 KiB to the server with no window at all: echoed back in full.
  peer.send(dataFrame(1, Buffer.alloc(200 * 1024, 1), true));
  await waitFor(() => peer.tap.dataBytes(1) === 200 * 1024, 3000, 'echo');
  assert.ok(!session.closed);
  assert.equal(peer.tap.ofType(TYPE.WINDOW_UPDATE).length, 0);
  assert.equal(peer.tap.ofType(TYPE.SETTINGS).length, 0);
});

test('backpressure: an unread server stream pauses the socket, memory stays bounded, then it resumes', async (t) => {
  const p = await sessionPair({ tap: false });
  t.after(() => p.close());
  const incoming = nextStream(p.server);
  const cs = p.client.openStream(PF('0'));
  const ss = await incoming;
  ss.reply();
  const total = 200 * MiB;
  // A second stream on the same connection, to show the stall is per connection.
  const other = nextStream(p.server);
  const cs2 = p.client.openStream(PF('1'));
  const ss2 = await other;
  ss2.reply();

  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  let accepted = 0;
  const counter = new (await import('node:stream')).Transform({
    transform(chunk: Buffer, _enc, cb) {
      accepted += chunk.length;
      cb(null, chunk);
    },
  });
  const block = patternBuffer(1 * MiB, 3);
  const writer = (async () => {
    for (let sent = 0; sent < total; sent += block.length) {
      if (!counter.write(block)) await once(counter, 'drain');
    }
    counter.end();
  })();
  counter.pipe(cs);

  await sleep(400);
  const stalledAt = accepted;
  assert.ok(p.serverSocket.isPaused(), 'server socket paused');
  assert.ok(stalledAt < 32 * MiB, `writer stalled early (${(stalledAt / MiB).toFixed(1)} MiB accepted)`);
  const bufferedAtStall = ss.readableLength;
  assert.ok(bufferedAtStall <= 256 * 1024 + 128 * 1024, `stream buffer bounded (${bufferedAtStall})`);
  // The other stream on the same connection is stalled too (one socket).
  cs2.write('blocked?');
  await sleep(100);
  assert.equal(ss2.readableLength, 0);
  await sleep(200);
  assert.equal(accepted, stalledAt, 'no progress while unread');
  const rssStalled = process.memoryUsage().rss;
  assert.ok(rssStalled - rssBefore < 96 * MiB, `RSS growth while stalled: ${((rssStalled - rssBefore) / MiB).toFixed(1)} MiB`);

  // Now read: everything arrives, the other stream unblocks too.
  const other2 = readBytes(ss2, 8);
  const got = await within(drain(ss), 15_000, '200 MiB drain');
  await writer;
  assert.equal(got.bytes, total);
  assert.equal((await other2).toString(), 'blocked?');
  const rssAfter = process.memoryUsage().rss;
  t.diagnostic(
    `stalled after ${(stalledAt / MiB).toFixed(1)} MiB, server stream buffer ${bufferedAtStall} B, RSS +${((rssStalled - rssBefore) / MiB).toFixed(1)} MiB stalled, +${((rssAfter - rssBefore) / MiB).toFixed(1)} MiB after 200 MiB`,
  );
  assert.ok(rssAfter - rssBefore < 160 * MiB, `RSS growth overall: ${((rssAfter - rssBefore) / MiB).toFixed(1)} MiB`);
  assert.ok(!p.serverSocket.isPaused());
});

test('with no stream listener a peer stream is refused (RST REFUSED_STREAM)', async (t) => {
  const { session, peer, close } = await sessionWithRawPeer('server');
  t.after(close);
  await peer.synStream(1, PF('0'));
  await peer.waitFrame((f) => f.type === TYPE.RST_STREAM);
  assert.deepEqual(peer.tap.resets(), [[1, RstCode.REFUSED_STREAM]]);
  assert.ok(!session.closed);
});

test('openStream({ fin: true }) sends one FIN, on the SYN_STREAM, and no DATA frame', async (t) => {
  const p = await sessionPair();
  t.after(() => p.close());
  const incoming = nextStream(p.server);
  const cs = p.client.openStream(PF('0'), { fin: true });
  const ss = await incoming;
  assert.equal((await collect(ss)).length, 0, 'server sees the client side ended');
  ss.reply();
  const download = collect(cs);
  ss.end('only down');
  assert.equal((await download).toString(), 'only down');
  await waitFor(() => p.client.streamCount === 0 && p.server.streamCount === 0, 2000, 'streams closed');
  await sleep(20);
  const syn = p.fromClient.ofType(TYPE.SYN_STREAM);
  assert.equal(syn.length, 1);
  assert.equal(syn[0]!.flags, 1, 'FLAG_FIN on SYN_STREAM');
  assert.deepEqual(p.fromClient.ofType(TYPE.DATA).map((f) => [f.streamId, f.flags, f.length]), [], 'no DATA frame after a FIN');
  assert.deepEqual(p.fromClient.resets(), []);
  assert.deepEqual(p.fromServer.resets(), []);
});

test('headers spdystream forbids are fatal: host/connection/… in SYN_STREAM, connection/… in SYN_REPLY', async (t) => {
  for (const name of ['host', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding']) {
    const { session, peer, close } = await sessionWithRawPeer('server');
    t.after(close);
    session.on('stream', () => assert.fail('no stream may be accepted'));
    const closed = sessionClosed(session);
    await peer.synStream(1, { ...PF('0'), [name]: 'x' });
    const error = await within(closed, 1000, name);
    assert.ok(error instanceof SpdyProtocolError, name);
    assert.match(error.message, new RegExp(name));
  }
  // `host` is fine in a SYN_REPLY; `connection` is not.
  const { session, peer, close } = await sessionWithRawPeer('client');
  t.after(close);
  const s1 = session.openStream(PF('0'));
  s1.on('error', () => {});
  const replied = once(s1, 'reply');
  await peer.synReply(1, { host: 'ok' });
  assert.deepEqual((await replied)[0], { host: 'ok' });
  const s3 = session.openStream(PF('1'));
  s3.on('error', () => {});
  const closed = sessionClosed(session);
  await peer.synReply(3, { connection: 'close' });
  assert.ok((await within(closed, 1000, 'close')) instanceof SpdyProtocolError);
});

test('data that arrived just before an RST is still read (async iteration, late reader), then StreamResetError', async (t) => {
  const p = await sessionPair();
  t.after(() => p.close());
  for (const mode of ['for-await', 'late reader', 'data listener']) {
    const incoming = nextStream(p.server);
    const cs = p.client.openStream(PF(mode));
    const ss = await incoming;
    ss.reply();
    await once(cs, 'reply');
    let text = '';
    const consume = async (): Promise<Error | undefined> => {
      try {
        if (mode === 'data listener') {
          await new Promise<void>((resolve, reject) => {
            cs.on('data', (chunk: Buffer) => (text += chunk.toString()));
            cs.once('end', resolve);
            cs.once('error', reject);
          });
        } else {
          for await (const chunk of cs) text += (chunk as Buffer).toString();
        }
        return undefined;
      } catch (error) {
        return error as Error;
      }
    };
    const early = mode === 'late reader' ? undefined : consume();
    // The kubelet's failure path: text, then RST, leaving together.
    const resets = p.fromServer.resets().length;
    p.serverSocket.cork();
    ss.write(`failure text (${mode})`);
    ss.reset();
    p.serverSocket.uncork();
    await waitFor(() => p.fromServer.resets().length === resets + 1, 1000, 'RST on the wire');
    if (mode === 'late reader') await sleep(50);
    const error = await within(early ?? consume(), 1000, mode);
    assert.equal(text, `failure text (${mode})`, mode);
    assert.ok(error instanceof StreamResetError, `${mode}: ${error}`);
    assert.equal(error.status, RstCode.CANCEL);
  }
  await waitFor(() => p.client.streamCount === 0, 1000, 'streams forgotten');
});
