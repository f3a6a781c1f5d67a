/**
 * relay() on real loopback sockets: how the client's connection ends is
 * decided by what the destination did, whatever order the two sides'
 * callbacks come in. A destination that fails before its end (reset, error,
 * closed without FIN) reaches the client as an RST, also after the client
 * half-closed; a destination that ended cleanly gives the client every byte
 * and a FIN, also when its writable side fails afterwards.
 *
 * Endings are read with wireEnding (test/helpers/wire-ending.ts): Node 20's
 * libuv reports an RST that arrives behind unread bytes as 'end', so 'end'
 * alone cannot tell a reset from a FIN; the last case shows that it cannot.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { relay, type RelayResult } from '../../src/net/relay.js';
import { wireEnding, type WireEnding } from '../helpers/wire-ending.js';

/** What the destination server does once a connection's request arrived (it stands for the pod). */
type Destination = (socket: Socket) => void;

interface Rig {
  /** The client socket, connected through the relay. */
  client: Socket;
  /** The relay's destination side, once the relay started. */
  upstream: Promise<Socket>;
  /** When the proxy's side of the client connection (the socket relay() ends, resets or destroys) emitted 'close'. */
  proxySideClosed: Promise<void>;
  /** What relay() reported when it was done. */
  result: Promise<RelayResult>;
}

async function listen(t: TestContext, server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  return (server.address() as AddressInfo).port;
}

/** client → proxy (relay) → destination, all on 127.0.0.1. */
async function startRelay(t: TestContext, destination: Destination): Promise<Rig> {
  const sockets: Socket[] = [];
  t.after(() => {
    for (const s of sockets) s.destroy();
  });
  const destinationServer = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
    // Only once the request came through the relay: a reset before that would fail the connect instead.
    socket.once('data', () => destination(socket));
  });
  const destinationPort = await listen(t, destinationServer);
  let startUpstream!: (socket: Socket) => void;
  let proxySideClosed!: Promise<void>;
  let finish!: (result: RelayResult) => void;
  const upstream = new Promise<Socket>((resolve) => (startUpstream = resolve));
  const result = new Promise<RelayResult>((resolve) => (finish = resolve));
  // As the proxy does: half-open allowed on both sides, an 'error' listener on each.
  const proxy = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
    proxySideClosed = once(socket, 'close').then(() => {});
    const up = connect({ port: destinationPort, host: '127.0.0.1', allowHalfOpen: true });
    sockets.push(up);
    up.on('error', () => {});
    up.once('connect', () => {
      relay(socket, up, Buffer.alloc(0), finish);
      startUpstream(up);
    });
  });
  const proxyPort = await listen(t, proxy);
  const client = connect({ port: proxyPort, host: '127.0.0.1' });
  sockets.push(client);
  await once(client, 'connect');
  client.write('request\n');
  return {
    client,
    upstream,
    result,
    get proxySideClosed() {
      return proxySideClosed;
    },
  };
}

/** Counts what the client reads, flowing. */
function reader(client: Socket): { bytes: () => number } {
  let bytes = 0;
  client.on('data', (chunk: Buffer) => (bytes += chunk.length));
  return { bytes: () => bytes };
}

const MIB = 1024 * 1024;

test('a destination reset midway: the client sees a reset, and the relay reports the failure', async (t) => {
  const rig = await startRelay(t, (socket) => {
    socket.write(Buffer.alloc(MIB), () => socket.resetAndDestroy());
  });
  const ending = wireEnding(rig.client);
  reader(rig.client);
  assert.equal(await ending, 'reset');
  const result = await rig.result;
  assert.equal(result.error?.code, 'CONNECTION_LOST');
});

test('the client half-closed, then the destination fails: the client still sees a reset, not a FIN', async (t) => {
  const SIZE = 256 * 1024;
  let destinationSawEnd = false;
  const rig = await startRelay(t, (socket) => {
    socket.write(Buffer.alloc(SIZE));
    // The client's FIN reaches the destination (half-close is passed on); the failure comes after it.
    socket.once('end', () => {
      destinationSawEnd = true;
      socket.resetAndDestroy();
    });
    socket.resume();
  });
  const ending = wireEnding(rig.client);
  const read = reader(rig.client);
  // Everything read before the client half-closes, so the reset finds nothing unread
  // (a half-closed socket cannot be probed: its 'end' would count as a FIN).
  await new Promise<void>((resolve) => rig.client.on('data', () => read.bytes() === SIZE && resolve()));
  rig.client.end();
  assert.equal(await ending, 'reset');
  assert.ok(destinationSawEnd, "the client's FIN must have reached the destination before it failed");
  assert.equal((await rig.result).error?.code, 'CONNECTION_LOST');
});

test('a destination closed without an end or an error (destroyed): the client sees a reset', async (t) => {
  const rig = await startRelay(t, (socket) => {
    socket.write(Buffer.alloc(MIB));
  });
  const ending = wireEnding(rig.client);
  const read = reader(rig.client);
  const upstream = await rig.upstream;
  // Destroyed from our side, as the dialer destroys a socket whose pair failed: no FIN ever came.
  upstream.once('data', () => setImmediate(() => upstream.destroy()));
  assert.equal(await ending, 'reset');
  assert.ok(read.bytes() < MIB, `the client read ${read.bytes()} bytes: the destination was destroyed midway`);
  assert.equal((await rig.result).error?.code, 'CONNECTION_LOST');
});

test('a destination that ends cleanly: the client gets every byte, then a FIN', async (t) => {
  const SIZE = 3 * MIB + 7;
  const rig = await startRelay(t, (socket) => {
    socket.end(Buffer.alloc(SIZE, 1));
  });
  const read = reader(rig.client);
  const ending = wireEnding(rig.client);
  assert.equal(await ending, 'fin');
  assert.equal(read.bytes(), SIZE);
});

test("a destination whose writable side fails after its clean end: the client's download is complete, then a FIN", async (t) => {
  // The pod sent everything and its FIN, then the way to it broke while the client had not read it all
  // (the pair closed after its half-open grace, the connection dropped): that is no truncated download.
  const SIZE = 200 * 1024 + 3;
  const rig = await startRelay(t, (socket) => {
    socket.resume();
    socket.end(Buffer.alloc(SIZE, 2));
  });
  rig.client.pause();
  const ending = wireEnding(rig.client);
  const read = reader(rig.client);
  rig.client.pause();
  const upstream = await rig.upstream;
  // After relay's own 'end' listener (which ends the client): the failure comes right behind the end.
  upstream.once('end', () => upstream.destroy(new Error('the upload side broke')));
  const result = await rig.result;
  assert.ok(result.error, 'the relay reports the failure');
  assert.equal(result.bytesDown, SIZE);
  rig.client.resume();
  assert.equal(await ending, 'fin');
  assert.equal(read.bytes(), SIZE, 'every byte the destination sent before its FIN');
  // A reset asked for behind end() fails in libuv (EINVAL while the shutdown is pending) and leaves
  // the socket open for good; the proxy's side must close.
  const closed = rig.proxySideClosed.then(() => true);
  const bound = new Promise<boolean>((resolve) => setTimeout(resolve, 5000, false).unref());
  assert.ok(await Promise.race([closed, bound]), "the proxy's side of the client connection never closed");
});

test("why endings are probed: an RST behind unread bytes is 'end' to Node, a reset to the kernel", async (t) => {
  // The proxy's side of this is right (RST, no FIN); the client's libuv turns it into EOF
  // (libuv/libuv#2319, fixed upstream by #4997). curl, browsers, Go and Python see a reset.
  const rig = await startRelay(t, (socket) => {
    // More than the client's stream buffer: Node stops reading, the rest waits in the kernel.
    socket.write(Buffer.alloc(100_000), () => setTimeout(() => socket.resetAndDestroy(), 50));
  });
  rig.client.pause();
  const events: string[] = [];
  rig.client.once('end', () => events.push('end'));
  rig.client.once('error', (error) => events.push(`error ${(error as NodeJS.ErrnoException).code}`));
  const ending: Promise<WireEnding> = wireEnding(rig.client);
  await rig.result;
  // The reset is there, behind unread bytes; now the client reads.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const read = reader(rig.client);
  rig.client.resume();
  assert.equal(await ending, 'reset');
  assert.ok(read.bytes() > 0, 'the reset came behind bytes the client had not read');
  t.diagnostic(`Node ${process.version} (libuv ${process.versions.uv}) reported: ${events.join(', ')}`);
});
