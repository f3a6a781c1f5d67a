/**
 * WebSocketByteStream (our RFC 6455 client framing on an upgraded socket)
 * against ws's server on 127.0.0.1, an independent implementation: messages
 * read as one byte stream (fragmented ones too, and frames whose header is cut
 * across TCP reads), each write is one masked binary message — a corked batch
 * of odd-sized chunks is one message whose mask runs on across them, big and
 * small, with output buffers reused — a text message, a malformed frame and an
 * abnormal close are errors (never a clean end), close 1000 is EOF, a PING is
 * answered, and a slow reader pauses the socket instead of buffering without bound.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { KubesocksError } from '../../src/errors.js';
import { WebSocketByteStream } from '../../src/net/websocket-stream.js';
import { WsByteStream } from '../../src/sim/websocket-byte-stream.js';
import { SpdySession } from '../../src/spdy/session.js';

interface Pair {
  client: WebSocketByteStream;
  server: WebSocket;
  /** The server's TCP socket, for writing raw frames. */
  serverSocket: Socket;
}

/** A ws server and our stream on a socket upgraded by a plain HTTP request (the handshake is not under test here). */
async function pair(t: TestContext): Promise<Pair> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await once(wss, 'listening');
  t.after(() => {
    for (const c of wss.clients) c.terminate();
    wss.close();
  });
  const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
  const request = http.request({
    host: '127.0.0.1',
    port: (wss.address() as AddressInfo).port,
    headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': randomBytes(16).toString('base64') },
  });
  request.end();
  const [, socket, head] = (await once(request, 'upgrade')) as [http.IncomingMessage, Duplex, Buffer];
  const [server] = await accepted;
  const client = new WebSocketByteStream(socket, head);
  t.after(() => client.destroy());
  return { client, server, serverSocket: (server as unknown as { _socket: Socket })._socket };
}

function failure(stream: WebSocketByteStream): Promise<KubesocksError | 'end'> {
  return new Promise((resolve) => {
    stream.once('error', (error) => resolve(error as KubesocksError));
    stream.once('end', () => resolve('end'));
    stream.resume();
  });
}

test('binary messages read as one byte stream; close 1000 is EOF', async (t) => {
  const { client, server } = await pair(t);
  const chunks: Buffer[] = [];
  client.on('data', (c: Buffer) => chunks.push(c));
  for (const part of ['he', 'l', 'lo ', 'world']) server.send(Buffer.from(part), { binary: true });
  server.close(1000);
  await once(client, 'end');
  assert.equal(Buffer.concat(chunks).toString(), 'hello world');
});

test('each write is one binary message; a corked batch is one message', async (t) => {
  const { client, server } = await pair(t);
  const messages: Array<{ data: Buffer; binary: boolean }> = [];
  server.on('message', (data: Buffer, binary: boolean) => messages.push({ data, binary }));
  client.write(Buffer.from('one'));
  await new Promise((r) => setImmediate(r));
  client.cork();
  client.write(Buffer.from('two-a'));
  client.write(Buffer.from('two-b'));
  client.uncork();
  await waitFor(() => messages.length === 2);
  assert.deepEqual(
    messages.map((m) => [m.data.toString(), m.binary]),
    [
      ['one', true],
      ['two-atwo-b', true],
    ],
  );
});

test('batches of odd-sized chunks arrive as masked binary messages, byte for byte; big batches and reused buffers too', async (t) => {
  const { client, server } = await pair(t);
  const received: Buffer[] = [];
  let text = 0;
  server.on('message', (data: Buffer, binary: boolean) => (binary ? received.push(data) : text++));
  const sent: Buffer[] = [];
  // Sizes across the 7-bit, 16-bit and 64-bit length forms, chunks starting at every mask phase,
  // a batch beyond the reused buffers' size, and many messages in flight at once (writes made
  // while one is in flight leave together, as one message).
  const batches = [[1], [3, 5, 7], [125], [126], [65535], [65536], [1, 70000, 2, 3], [300 * 1024, 1], ...Array.from({ length: 40 }, (_, i) => [8, 64 * 1024 - i])];
  let total = 0;
  for (const sizes of batches) {
    const chunks = sizes.map((n) => randomBytes(n));
    const copies = chunks.map((c) => Buffer.from(c));
    client.cork();
    for (const c of chunks) client.write(c);
    client.uncork();
    sent.push(...copies);
    total += copies.reduce((n, c) => n + c.length, 0);
    // The caller's chunks are not touched by the masking.
    chunks.forEach((c, i) => assert.ok(c.equals(copies[i]!), 'a written chunk was modified'));
    if (sent.length % 7 === 0) await new Promise((r) => setImmediate(r));
  }
  await waitFor(() => received.reduce((n, r) => n + r.length, 0) >= total, 30_000);
  assert.equal(text, 0);
  // Batches past ~128 KiB leave as several messages (the 300 KiB one as three).
  assert.ok(received.length > 1 && received.length <= batches.length + 2, `${received.length} messages`);
  assert.ok(Math.max(...received.map((r) => r.length)) <= 128 * 1024, 'a message larger than 128 KiB');
  assert.ok(Buffer.concat(received).equals(Buffer.concat(sent)), 'the bytes arrived altered');
});

test('fragmented messages, and frames whose header is cut across TCP reads, read as the same byte stream', async (t) => {
  const { client, server, serverSocket } = await pair(t);
  const chunks: Buffer[] = [];
  client.on('data', (c: Buffer) => chunks.push(c));
  server.send(Buffer.from('frag-'), { binary: true, fin: false });
  server.send(Buffer.from('ment'), { binary: true, fin: false });
  server.send(Buffer.from('ed|'), { binary: true, fin: true });
  await waitFor(() => Buffer.concat(chunks).length === 12);
  // A 70,000-byte binary frame with the 64-bit length form, written a byte at a time for its header.
  const payload = randomBytes(70_000);
  const head = Buffer.from([0x82, 127, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70]);
  assert.equal(head.readUInt32BE(6), payload.length);
  serverSocket.setNoDelay(true);
  for (const byte of head) {
    serverSocket.write(Buffer.from([byte]));
    await new Promise((r) => setTimeout(r, 2));
  }
  serverSocket.write(payload);
  await waitFor(() => Buffer.concat(chunks).length === 12 + payload.length);
  const all = Buffer.concat(chunks);
  assert.equal(all.subarray(0, 12).toString(), 'frag-mented|');
  assert.ok(all.subarray(12).equals(payload));
});

test('a PING is answered with a PONG carrying its payload, and the stream goes on', async (t) => {
  const { client, server } = await pair(t);
  const pong = once(server, 'pong') as Promise<[Buffer]>;
  server.ping(Buffer.from('are you there'));
  const [data] = await pong;
  assert.equal(data.toString(), 'are you there');
  const got = once(client, 'data') as Promise<[Buffer]>;
  server.send(Buffer.from('still here'), { binary: true });
  assert.equal((await got)[0].toString(), 'still here');
});

for (const { name, frame, text } of [
  { name: 'a masked frame from the server', frame: [0x82, 0x81, 1, 2, 3, 4, 0x55], text: /masked frame/ },
  { name: 'reserved bits set', frame: [0xc2, 0x01, 0x55], text: /reserved bits/ },
  { name: 'a continuation frame outside a message', frame: [0x80, 0x01, 0x55], text: /continuation frame outside a message/ },
  { name: 'an unknown opcode', frame: [0x83, 0x00], text: /unknown opcode 3/ },
  { name: 'a fragmented PING', frame: [0x09, 0x00], text: /fragmented control frame/ },
  { name: 'a 1-byte close payload', frame: [0x88, 0x01, 0x03], text: /1-byte payload/ },
]) {
  test(`a malformed frame (${name}) fails the stream with PROTOCOL_ERROR and a close 1002`, async (t) => {
    const { client, server, serverSocket } = await pair(t);
    const result = failure(client);
    const closed = once(server, 'close') as Promise<[number]>;
    server.on('error', () => {});
    serverSocket.write(Buffer.from(frame));
    const error = await result;
    assert.ok(error instanceof KubesocksError, `expected an error, got ${String(error)}`);
    assert.equal(error.code, 'PROTOCOL_ERROR');
    assert.match(error.message, text);
    const [code] = await closed;
    // ws reports 1002 when it got our close, 1006 when the socket went first; never a clean 1000.
    assert.notEqual(code, 1000);
  });
}

test('a close frame without a code is no clean end (1005)', async (t) => {
  const { client, serverSocket } = await pair(t);
  const result = failure(client);
  serverSocket.write(Buffer.from([0x88, 0x00]));
  const error = await result;
  assert.ok(error instanceof KubesocksError);
  assert.equal(error.code, 'CONNECTION_LOST');
  assert.match(error.message, /close code 1005/);
});

test('a text message is a protocol error, not data', async (t) => {
  const { client, server } = await pair(t);
  const result = failure(client);
  server.send('not binary');
  const error = await result;
  assert.ok(error instanceof KubesocksError, `expected an error, got ${String(error)}`);
  assert.equal(error.code, 'PROTOCOL_ERROR');
});

test('a close with another code, or a dropped connection, is an error, never a clean end', async (t) => {
  const a = await pair(t);
  const first = failure(a.client);
  a.server.close(1011, 'internal');
  const closed = await first;
  assert.ok(closed instanceof KubesocksError);
  assert.equal(closed.code, 'CONNECTION_LOST');
  assert.match(closed.message, /close code 1011 \(internal\)/);

  const b = await pair(t);
  const second = failure(b.client);
  b.server.terminate();
  const dropped = await second;
  assert.ok(dropped instanceof KubesocksError);
  assert.equal(dropped.code, 'CONNECTION_LOST');
});

test('ending the stream sends close 1000; the server’s answer ends it and the connection closes', async (t) => {
  const { client, server, serverSocket } = await pair(t);
  const closed = once(server, 'close') as Promise<[number, Buffer]>;
  const ended = once(client, 'end');
  client.resume();
  client.end();
  const [code] = await closed;
  assert.equal(code, 1000);
  await ended;
  if (!serverSocket.destroyed) await once(serverSocket, 'close');
  // After a close, a write fails instead of vanishing.
  await assert.rejects(
    new Promise<void>((resolve, reject) => client.write(Buffer.from('late'), (e) => (e ? reject(e) : resolve()))),
    (e: unknown) => e instanceof Error,
  );
});

test('a reader that stops reading pauses the WebSocket: the server’s socket backs up instead of our memory', async (t) => {
  const { client, server, serverSocket } = await pair(t);
  client.pause();
  const chunk = Buffer.alloc(64 * 1024, 7);
  let sent = 0;
  // Send until the server's own socket stops taking bytes (the kernel buffers fill once we stop reading).
  while (sent < 256 * 1024 * 1024 && serverSocket.writableLength < 8 * 1024 * 1024) {
    server.send(chunk, { binary: true });
    sent += chunk.length;
    if (sent % (4 * 1024 * 1024) === 0) await new Promise((r) => setTimeout(r, 5));
  }
  assert.ok(serverSocket.writableLength >= 8 * 1024 * 1024, `the server could send ${sent} bytes without backing up`);
  // Our side holds a bounded amount: the readable buffer plus what the kernel had in flight.
  assert.ok(client.readableLength < 32 * 1024 * 1024, `client buffered ${client.readableLength} bytes`);
  let received = 0;
  client.on('data', (c: Buffer) => (received += c.length));
  client.resume();
  await waitFor(() => received === sent, 30_000);
});

test('a server that stops reading holds our writes back: completed writes stay bounded, and all arrive once it reads', async (t) => {
  const { client, server, serverSocket } = await pair(t);
  let received = 0;
  server.on('message', (data: Buffer) => (received += data.length));
  serverSocket.pause();
  const chunk = Buffer.alloc(64 * 1024, 9);
  let completed = 0;
  let offered = 0;
  // Write while our writable side takes more, up to 256 MiB.
  while (offered < 256 * 1024 * 1024) {
    offered += chunk.length;
    const more = client.write(chunk, () => (completed += chunk.length));
    if (!more) {
      const drained = await Promise.race([once(client, 'drain').then(() => true), new Promise((r) => setTimeout(() => r(false), 500))]);
      if (!drained) break;
    }
  }
  assert.ok(offered < 256 * 1024 * 1024, 'every write completed although the server read nothing');
  // What completed sits in the kernel's buffers and at most SOCKET_QUEUE_BYTES of the socket's queue.
  assert.ok(completed < 64 * 1024 * 1024, `${completed} bytes of writes completed with the server not reading`);
  serverSocket.resume();
  await waitFor(() => received === offered, 30_000);
});

test('a SPDY session runs over the stream with its frames cut into 1-byte messages', async (t) => {
  const { client, server } = await pair(t);
  // The server relays the bytes of a server-role session one byte per message.
  const serverSide = new WsByteStream(server);
  const spdyServer = new SpdySession(oneBytePerMessage(serverSide, server), { role: 'server' });
  t.after(() => spdyServer.close());
  spdyServer.on('stream', (stream) => {
    stream.reply({});
    stream.pipe(stream);
  });
  const spdyClient = new SpdySession(client, { role: 'client' });
  t.after(() => spdyClient.close());
  const stream = spdyClient.openStream({ streamtype: 'data', port: '80', requestid: '0' });
  stream.end(Buffer.from('round trip through one-byte messages'));
  const echoed: Buffer[] = [];
  for await (const c of stream) echoed.push(c as Buffer);
  assert.equal(Buffer.concat(echoed).toString(), 'round trip through one-byte messages');
});

/** A Duplex that reads from `stream` but writes every byte as its own binary message on `ws`. */
function oneBytePerMessage(stream: WsByteStream, ws: WebSocket): WsByteStream {
  stream.write = ((chunk: Buffer, ...rest: unknown[]) => {
    for (const byte of chunk) ws.send(Buffer.from([byte]), { binary: true });
    const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    callback?.();
    return true;
  }) as typeof stream.write;
  return stream;
}

async function waitFor(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
