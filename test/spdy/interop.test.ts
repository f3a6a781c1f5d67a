/**
 * Interop with an independent SPDY/3.1 implementation, spdy-transport 3.0.0:
 * (a) spdy-transport as the server, our SpdySession as the client;
 * (b) spdy-transport as the client, our SpdySession as the server.
 * (The kubelet behaviours through spdy-transport are in kubelet-sim.test.ts.)
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type * as net from 'node:net';
import { test } from 'node:test';
import { StreamResetError } from '../../src/spdy/errors.js';
import { RstCode } from '../../src/spdy/protocol.js';
import { SpdySession } from '../../src/spdy/session.js';
import type { SpdyStream } from '../../src/spdy/stream.js';
import { collect, connect, drain, listen, patternBuffer, pump, sleep, waitFor, within } from '../helpers/spdy-net.js';
import {
  collectUntilClose,
  disableSendWindow,
  spdyTransportClient,
  spdyTransportServer,
  type StPeer,
  type StStream,
} from '../helpers/spdy-transport.js';
import { FrameTap, TYPE } from '../helpers/spdy-wire.js';

const MiB = 1024 * 1024;
/**
 * spdy-transport's server-side parser refuses a SYN_STREAM without `:method`
 * and `:path` (see the "needs :method and :path" test below), so every stream
 * our client opens towards it carries those two as well; spdystream ignores
 * them, so this changes nothing about what is being tested.
 */
const PSEUDO = { ':method': 'POST', ':path': '/' };
const PF = (requestid: string, streamtype = 'data', port = '8080') => ({ ...PSEUDO, streamtype, port, requestid });

interface ServerSide {
  port: number;
  peers: StPeer[];
  streams: StStream[];
  close(): Promise<void>;
}

/** A spdy-transport SPDY/3.1 server; `onStream` runs for every stream after respond(200). */
async function stServer(onStream: (stream: StStream, peer: StPeer) => void, options: { windowWorkaround?: boolean } = {}): Promise<ServerSide> {
  const peers: StPeer[] = [];
  const streams: StStream[] = [];
  const listener = await listen((socket) => {
    const peer = spdyTransportServer(socket, options);
    peers.push(peer);
    peer.conn.on('stream', (stream: StStream) => {
      streams.push(stream);
      stream.on('error', () => {});
      if (options.windowWorkaround !== false) disableSendWindow(stream);
      stream.respond(200, {});
      onStream(stream, peer);
    });
  });
  return { port: listener.port, peers, streams, close: () => listener.close() };
}

async function ourClient(port: number): Promise<{ session: SpdySession; socket: net.Socket; fromPeer: FrameTap; close(): void }> {
  const socket = await connect(port);
  const fromPeer = new FrameTap(socket);
  const session = new SpdySession(socket, { role: 'client' });
  return { session, socket, fromPeer, close: () => session.close() };
}

function open(session: SpdySession, headers: Record<string, string>, options?: { fin?: boolean }): SpdyStream {
  const stream = session.openStream(headers, options);
  stream.on('error', () => {});
  return stream;
}

// ---- (a) spdy-transport server, our client ----

test('(a) spdy-transport server needs :method and :path in SYN_STREAM (why PSEUDO is added)', async (t) => {
  const server = await stServer(() => assert.fail('no stream expected'));
  t.after(() => server.close());
  const { session, close } = await ourClient(server.port);
  t.after(close);
  open(session, { streamtype: 'data', port: '80', requestid: '0' }); // client-go's exact shape
  await waitFor(() => (server.peers[0]?.errors.length ?? 0) > 0, 2000, 'spdy-transport parser error');
  assert.match(server.peers[0]!.errors[0]!.message, /Missing `:method` and\/or `:path` header/);
});

test('(a) headers, SYN_REPLY with :status, 1 MiB both ways on 3 streams, clean FINs', async (t) => {
  const results: Array<Promise<unknown>> = [];
  const server = await stServer((stream) => {
    results.push(Promise.all([drain(stream), pump(stream, MiB, { seed: stream.id, chunk: 100_000 })]));
  });
  t.after(() => server.close());
  const { session, fromPeer, close } = await ourClient(server.port);
  t.after(close);

  const streams = ['0', '1', '2'].map((id) => open(session, PF(id)));
  // Read every stream from the start: with no flow control an unread stream
  // stalls the whole connection (the other streams' SYN_REPLYs queue behind its DATA).
  const replies = Promise.all(streams.map((s) => once(s, 'reply').then(([h]) => h as Record<string, string>)));
  const ours = await within(Promise.all(streams.map((s) => Promise.all([pump(s, MiB, { seed: 50 + s.id }), drain(s)]))), 10_000, '1 MiB exchange');
  for (const reply of await replies) assert.equal(reply[':status'], '200 OK', 'spdy-transport replies with a status (spdystream does not)');
  const theirs = (await Promise.all(results)) as Array<[{ bytes: number; sha256: string }, { bytes: number; sha256: string }]>;
  assert.deepEqual(server.streams.map((s) => s.headers), ['0', '1', '2'].map((id) => PF(id)), 'headers intact through their zlib');
  for (const [i, [sent, got]] of ours.entries()) {
    const [theirGot, theirSent] = theirs[i]!;
    assert.deepEqual(theirGot, sent, 'upload intact');
    assert.deepEqual(got, theirSent, 'download intact');
  }
  await waitFor(() => session.streamCount === 0, 2000, 'streams closed');
  await sleep(30);
  assert.deepEqual(fromPeer.resets(), [], 'spdy-transport sent no RST');
  assert.deepEqual(server.peers[0]!.resets(), [], 'we sent no RST');
  // spdy-transport sent SETTINGS and WINDOW_UPDATEs; we dropped them and sent none.
  assert.ok(fromPeer.ofType(TYPE.SETTINGS).length >= 1);
  assert.ok(fromPeer.ofType(TYPE.WINDOW_UPDATE).length >= 1);
  assert.equal(server.peers[0]!.frames.filter((f) => f.type === 'WINDOW_UPDATE' || f.type === 'SETTINGS').length, 0);
});

test('(a) half-close: our FIN ends their readable side, they can still write back', async (t) => {
  const server = await stServer((stream) => {
    void collectUntilClose(stream).then(({ data, ended }) => {
      assert.ok(ended);
      stream.write(`got ${data.toString()}`);
      setTimeout(() => stream.end(' bye'), 20);
    });
  });
  t.after(() => server.close());
  const { session, fromPeer, close } = await ourClient(server.port);
  t.after(close);
  const stream = open(session, PF('0'));
  stream.end('hello');
  assert.equal((await within(collect(stream), 2000, 'reply')).toString(), 'got hello bye');
  await waitFor(() => session.streamCount === 0);
  await sleep(30);
  assert.deepEqual(fromPeer.resets(), []);
  assert.deepEqual(server.peers[0]!.resets(), []);
});

test('(a) openStream({ fin: true }) is accepted without STREAM_ALREADY_CLOSED', async (t) => {
  const server = await stServer((stream) => {
    void collectUntilClose(stream).then(() => stream.end('down only'));
  });
  t.after(() => server.close());
  const { session, fromPeer, close } = await ourClient(server.port);
  t.after(close);
  const stream = open(session, PF('0'), { fin: true });
  assert.equal((await within(collect(stream), 2000, 'download')).toString(), 'down only');
  await sleep(50);
  assert.deepEqual(fromPeer.resets(), []);
});

test('(a) RST both ways', async (t) => {
  const server = await stServer(() => {});
  t.after(() => server.close());
  const { session, fromPeer, close } = await ourClient(server.port);
  t.after(close);

  // Ours → theirs: destroy() sends RST CANCEL; their stream closes.
  const s1 = open(session, PF('0'));
  await once(s1, 'reply');
  const theirs1 = server.streams[0]!;
  const closed1 = once(theirs1, 'close');
  s1.destroy();
  await within(closed1, 1000, 'their close');
  assert.deepEqual(server.peers[0]!.resets(), [[1, 'CANCEL']]);

  // Theirs → ours: abort() (CANCEL) and abort('REFUSED_STREAM').
  for (const [code, status] of [['CANCEL', RstCode.CANCEL], ['REFUSED_STREAM', RstCode.REFUSED_STREAM]] as const) {
    const s = open(session, PF(code));
    await once(s, 'reply');
    const failed = once(s, 'error');
    server.streams.at(-1)!.abort(code);
    const [error] = await within(failed, 1000, 'reset');
    assert.ok(error instanceof StreamResetError);
    assert.equal(error.status, status);
  }
  // spdy-transport answers our RST of stream 1 with an RST of its own (its
  // abort() always sends one); we drop it, the stream being gone already.
  assert.deepEqual(fromPeer.resets(), [[1, RstCode.CANCEL], [3, RstCode.CANCEL], [5, RstCode.REFUSED_STREAM]]);
  assert.ok(!session.closed, 'the connection survives stream resets');
});

test('(a) PING both ways', async (t) => {
  const server = await stServer(() => {});
  t.after(() => server.close());
  const { session, close } = await ourClient(server.port);
  t.after(close);
  assert.ok((await within(session.ping(), 1000, 'our ping')) >= 0);
  await waitFor(() => server.peers.length === 1);
  await within(new Promise<void>((resolve, reject) => server.peers[0]!.conn.ping((e) => (e ? reject(e) : resolve()))), 1000, 'their ping');
});

test('(a) without the window workaround spdy-transport stalls at 65,536 bytes: we never send WINDOW_UPDATE', async (t) => {
  const server = await stServer((stream) => {
    stream.write(patternBuffer(200 * 1024));
  }, { windowWorkaround: false });
  t.after(() => server.close());
  const { session, fromPeer, close } = await ourClient(server.port);
  t.after(close);
  const stream = open(session, PF('0'));
  let received = 0;
  stream.on('data', (chunk: Buffer) => (received += chunk.length));
  await waitFor(() => received >= 65_536, 2000, '64 KiB');
  await sleep(300);
  assert.equal(received, 65_536);
  assert.equal(fromPeer.dataBytes(1), 65_536);
});

// ---- (b) spdy-transport client, our server ----

async function ourServer(onStream: (stream: SpdyStream) => void): Promise<{ port: number; sessions: SpdySession[]; taps: FrameTap[]; close(): Promise<void> }> {
  const sessions: SpdySession[] = [];
  const taps: FrameTap[] = [];
  const listener = await listen((socket) => {
    taps.push(new FrameTap(socket));
    const session = new SpdySession(socket, { role: 'server' });
    sessions.push(session);
    session.on('stream', (stream) => {
      stream.on('error', () => {});
      onStream(stream);
    });
  });
  return {
    port: listener.port,
    sessions,
    taps,
    close: async () => {
      for (const session of sessions) session.close();
      await listener.close();
    },
  };
}

const PFB = (requestid: string, streamtype = 'data', port = '8080') => ({ streamtype, port, requestid });

test('(b) spdy-transport client: empty SYN_REPLY arrives as "headers", 1 MiB echo on 3 streams, clean FINs', async (t) => {
  const seen: SpdyStream[] = [];
  const server = await ourServer((stream) => {
    seen.push(stream);
    stream.reply();
    stream.pipe(stream);
  });
  t.after(() => server.close());
  const client = await spdyTransportClient(server.port);
  t.after(() => client.close());

  const streams = ['0', '1', '2'].map((id) => client.request(PFB(id)));
  const headers = await Promise.all(streams.map((s) => once(s, 'headers').then(([h]) => h)));
  assert.deepEqual(headers, [{}, {}, {}]);
  const results = await within(
    Promise.all(streams.map((s, i) => Promise.all([pump(s, MiB, { seed: 9 + i, chunk: 64 * 1024 }), drain(s)]))),
    10_000,
    'echo',
  );
  for (const [sent, got] of results) assert.deepEqual(got, sent);
  // What spdy-transport sends: our headers plus its pseudo-headers, all lower-case.
  for (const [i, s] of seen.entries()) {
    assert.equal(s.headers['streamtype'], 'data');
    assert.equal(s.headers['requestid'], String(i));
    assert.equal(s.headers[':method'], 'POST');
    assert.equal(s.headers[':path'], '/');
    assert.equal(s.headers[':version'], 'HTTP/1.1');
    assert.ok(':host' in s.headers && !('host' in s.headers));
  }
  await waitFor(() => server.sessions[0]!.streamCount === 0, 2000, 'streams closed');
  await sleep(30);
  assert.deepEqual(client.resets(), []);
  assert.deepEqual(server.taps[0]!.resets(), []);
  assert.ok(server.taps[0]!.ofType(TYPE.SETTINGS).length >= 1, 'their SETTINGS were dropped');
  assert.ok(!server.sessions[0]!.closed);
});

test('(b) without workaround 1 spdy-transport resets every stream with PROTOCOL_ERROR (no :status)', async (t) => {
  const errors: Error[] = [];
  const server = await ourServer((stream) => {
    stream.on('error', (e) => errors.push(e));
    stream.reply();
  });
  t.after(() => server.close());
  const client = await spdyTransportClient(server.port);
  t.after(() => client.close());
  client.request(PFB('0'), { replyWorkaround: false });
  await waitFor(() => errors.length === 1, 2000, 'reset');
  assert.ok(errors[0] instanceof StreamResetError);
  assert.equal(errors[0].status, RstCode.PROTOCOL_ERROR);
});

test('(b) without workaround 2 spdy-transport uploads stall at 65,536 bytes', async (t) => {
  let received = 0;
  const server = await ourServer((stream) => {
    stream.reply();
    stream.on('data', (chunk: Buffer) => (received += chunk.length));
  });
  t.after(() => server.close());
  const client = await spdyTransportClient(server.port, { windowWorkaround: false });
  t.after(() => client.close());
  const stream = client.request(PFB('0'), { windowWorkaround: false });
  stream.write(patternBuffer(200 * 1024));
  await waitFor(() => received >= 65_536, 2000, '64 KiB');
  await sleep(300);
  assert.equal(received, 65_536);
  assert.equal(server.taps[0]!.ofType(TYPE.WINDOW_UPDATE).filter((f) => f.streamId !== 0).length, 0, 'no per-stream WINDOW_UPDATE from the client yet');
});

test('(b) RST both ways and PING both ways', async (t) => {
  const ours: SpdyStream[] = [];
  const server = await ourServer((stream) => {
    ours.push(stream);
    stream.reply();
  });
  t.after(() => server.close());
  const client = await spdyTransportClient(server.port);
  t.after(() => client.close());

  const s1 = client.request(PFB('0'));
  await once(s1, 'headers');
  const failed = once(ours[0]!, 'error');
  s1.abort();
  const [error] = await within(failed, 1000, 'reset');
  assert.ok(error instanceof StreamResetError);
  assert.equal(error.status, RstCode.CANCEL);

  const s2 = client.request(PFB('1'));
  await once(s2, 'headers');
  const closed = collectUntilClose(s2);
  ours[1]!.reset();
  const result = await within(closed, 1000, 'their close');
  assert.equal(result.ended, false, 'a reset shows only as close');
  assert.deepEqual(client.resets(), [[3, 'CANCEL']]);

  const session = server.sessions[0]!;
  assert.ok((await within(session.ping(), 1000, 'our ping')) >= 0);
  await within(new Promise<void>((resolve, reject) => client.conn.ping((e) => (e ? reject(e) : resolve()))), 1000, 'their ping');
  assert.ok(!session.closed);
});
