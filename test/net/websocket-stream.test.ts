/**
 * WebSocketByteStream against a real ws server on 127.0.0.1: messages read
 * as one byte stream (a SPDY frame split over many messages still parses),
 * each write is one binary message, a text message and an abnormal close
 * are errors (never a clean end), close 1000 is EOF, and a slow reader
 * pauses the WebSocket instead of buffering without bound.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { KubesocksError } from '../../src/errors.js';
import { WebSocketByteStream } from '../../src/net/websocket-stream.js';
import { SpdySession } from '../../src/spdy/session.js';

interface Pair {
  client: WebSocketByteStream;
  server: WebSocket;
}

async function pair(t: TestContext): Promise<Pair> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await once(wss, 'listening');
  t.after(() => {
    for (const c of wss.clients) c.terminate();
    wss.close();
  });
  const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
  const ws = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`, { perMessageDeflate: false });
  await once(ws, 'open');
  const [server] = await accepted;
  const client = new WebSocketByteStream(ws);
  t.after(() => client.destroy());
  return { client, server };
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

test('ending the stream sends close 1000', async (t) => {
  const { client, server } = await pair(t);
  const closed = once(server, 'close') as Promise<[number, Buffer]>;
  client.end();
  const [code] = await closed;
  assert.equal(code, 1000);
});

test('a reader that stops reading pauses the WebSocket: the server’s socket backs up instead of our memory', async (t) => {
  const { client, server } = await pair(t);
  client.pause();
  const chunk = Buffer.alloc(64 * 1024, 7);
  let sent = 0;
  // Send until the server's own socket stops taking bytes (the kernel buffers fill once we stop reading).
  const serverSocket = (server as unknown as { _socket: import('node:net').Socket })._socket;
  while (sent < 256 * 1024 * 1024 && serverSocket.writableLength < 8 * 1024 * 1024) {
    server.send(chunk, { binary: true });
    sent += chunk.length;
    if (sent % (4 * 1024 * 1024) === 0) await new Promise((r) => setTimeout(r, 5));
  }
  assert.ok(serverSocket.writableLength >= 8 * 1024 * 1024, `the server could send ${sent} bytes without backing up`);
  // Our side holds a bounded amount: the readable buffer plus what ws and the kernel had in flight.
  assert.ok(client.readableLength < 32 * 1024 * 1024, `client buffered ${client.readableLength} bytes`);
  let received = 0;
  client.on('data', (c: Buffer) => (received += c.length));
  client.resume();
  await waitFor(() => received === sent, 30_000);
});

test('a SPDY session runs over the stream with its frames cut into 1-byte messages', async (t) => {
  const { client, server } = await pair(t);
  // The server relays the bytes of a server-role session one byte per message.
  const serverSide = new WebSocketByteStream(server);
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
function oneBytePerMessage(stream: WebSocketByteStream, ws: WebSocket): WebSocketByteStream {
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
