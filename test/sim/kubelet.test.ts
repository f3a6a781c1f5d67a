/**
 * The simulated kubelet (src/sim/kubelet.ts) driven directly over TCP by an
 * independent SPDY client, spdy-transport 3.0.0 with the two documented
 * workarounds, the way client-go drives a real kubelet: per request id an
 * error stream (half-closed at once) and a data stream.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test, type TestContext } from 'node:test';
import { SimKubelet } from '../../src/sim/kubelet.js';
import { zeroCounters } from '../../src/sim/cluster.js';
import { StreamResetError } from '../../src/spdy/errors.js';
import { SpdySession } from '../../src/spdy/session.js';
import type { PortForwardTarget, SimCounters } from '../../src/sim/types.js';
import { connect, echoServer, listen, patternBuffer, pump, readBytes, sleep, waitFor, within, type EchoServer } from '../helpers/spdy-net.js';
import { collectUntilClose, spdyTransportClient, type StClient, type StStream } from '../helpers/spdy-transport.js';

const POD: PortForwardTarget = { namespace: 'demo', name: 'web-0', uid: '6f1d7c2e-0d4b-4f7a-9a51-2b1c3d4e5f60' };
const OPEN_PORT = 80;
const MiB = 1024 * 1024;

interface Rig {
  kubelet: SimKubelet;
  counters: SimCounters;
  echo: EchoServer;
  /** A new port-forward connection; `target` is the pod the API server would hand over. */
  connect(target?: PortForwardTarget): Promise<StClient>;
  port: number;
}

async function rig(t: TestContext, options: { streamPairTimeoutMs?: number } = {}): Promise<Rig> {
  const echo = await echoServer();
  const counters: SimCounters = zeroCounters();
  const kubelet = new SimKubelet({
    // Only OPEN_PORT has a listener "inside the pod"; anything else is refused.
    backendFor: async (_target, port) => (port === OPEN_PORT ? { host: echo.host, port: echo.port } : null),
    counters,
    ...(options.streamPairTimeoutMs !== undefined ? { streamPairTimeoutMs: options.streamPairTimeoutMs } : {}),
  });
  const targets: PortForwardTarget[] = [];
  const listener = await listen((socket) => kubelet.accept(targets.shift() ?? POD, socket, Buffer.alloc(0)));
  const clients: StClient[] = [];
  t.after(async () => {
    for (const client of clients) client.close();
    kubelet.close();
    await listener.close();
    await echo.close();
  });
  return {
    kubelet,
    counters,
    echo,
    port: listener.port,
    connect: async (target = POD) => {
      targets.push(target);
      const client = await spdyTransportClient(listener.port);
      clients.push(client);
      return client;
    },
  };
}

interface Pair {
  error: StStream;
  data: StStream;
  /** Everything the kubelet wrote on the error stream, until it ended or was reset. */
  errorText: Promise<{ text: string; ended: boolean }>;
}

/**
 * client-go's per-socket sequence: error stream (write side closed at once),
 * data stream. Resolves once both SYN_STREAMs are on the wire: spdy-transport
 * sends a SYN_STREAM on the next tick unless the stream is written or ended
 * first, which would put ids out of order (a spdystream peer, and ours,
 * answers a lower id with RST PROTOCOL_ERROR).
 */
async function forward(client: StClient, requestId: string, port: number, order: 'error-first' | 'data-first' = 'error-first'): Promise<Pair> {
  const open = (streamtype: string) => client.request({ streamtype, port: String(port), requestid: requestId });
  const [first, second] = order === 'error-first' ? [open('error'), open('data')] : [open('data'), open('error')];
  await Promise.all([first.sent, second.sent]);
  const [error, data] = order === 'error-first' ? [first, second] : [second, first];
  error.end();
  const errorText = collectUntilClose(error).then(({ data: bytes, ended }) => ({ text: bytes.toString(), ended }));
  return { error, data, errorText };
}

async function echoes(stream: StStream, text: string): Promise<void> {
  const reply = readBytes(stream, Buffer.byteLength(text), 3000);
  stream.write(text);
  assert.equal((await reply).toString(), text);
}

test('pairs by requestid in either order, interleaved; echo through each pair', async (t) => {
  const r = await rig(t);
  const client = await r.connect();
  // Interleave: A error, B data, A data, B error.
  const aError = client.request({ streamtype: 'error', port: '80', requestid: 'A' });
  const bData = client.request({ streamtype: 'data', port: '80', requestid: 'B' });
  const aData = client.request({ streamtype: 'data', port: '80', requestid: 'A' });
  const bError = client.request({ streamtype: 'error', port: '80', requestid: 'B' });
  const headers = Promise.all([aError, bData, aData, bError].map((s) => once(s, 'headers')));
  await Promise.all([aError.sent, bData.sent, aData.sent, bError.sent]);
  aError.end();
  bError.end();
  const replies = await headers;
  assert.deepEqual(replies, [[{}], [{}], [{}], [{}]], 'every valid stream gets an empty SYN_REPLY');
  await echoes(aData, 'through pair A');
  await echoes(bData, 'through pair B');
  // 1 MiB through pair A, both ways at once.
  const big = patternBuffer(MiB, 5);
  const back = readBytes(aData, MiB, 5000);
  await pump(aData, MiB, { seed: 5, chunk: MiB, end: false });
  assert.ok((await back).equals(big));
  assert.equal(r.counters.streams, 4);
  assert.equal(r.counters.pairs, 2);
  assert.equal(r.echo.accepted(), 2);
  await waitFor(() => r.counters.bytesFromPods === MiB + 28, 2000, 'counters');
  assert.equal(r.counters.bytesToPods, MiB + 28);
  assert.equal(r.counters.openConnections, 1);
  assert.deepEqual(client.resets(), []);
});

test('a refused port: kubelet error text, then RST CANCEL on both streams; the connection goes on', async (t) => {
  const r = await rig(t);
  const client = await r.connect();
  const failed = await forward(client, '1', 81);
  const dataClosed = collectUntilClose(failed.data);
  const { text, ended } = await within(failed.errorText, 3000, 'error text');
  assert.equal(ended, false, 'the error stream is reset, not ended');
  assert.match(text, new RegExp(`^error forwarding port 81 to pod ${POD.name}, uid ${POD.uid}: `));
  assert.match(text, /failed to connect to localhost:81 inside namespace .*connect: connection refused/);
  assert.equal((await within(dataClosed, 1000, 'data close')).ended, false);
  assert.deepEqual(client.resets(), [
    [1, 'CANCEL'],
    [3, 'CANCEL'],
  ]);
  // Next request id on the same connection works.
  const ok = await forward(client, '2', OPEN_PORT);
  await echoes(ok.data, 'still usable');
  assert.equal(r.counters.pairs, 1);
  assert.equal(r.counters.openConnections, 1);
});

test('bad port / bad streamtype: RST CANCEL for that stream only', async (t) => {
  const r = await rig(t);
  const client = await r.connect();
  const good = await forward(client, '1', OPEN_PORT); // ids 1, 3
  await echoes(good.data, 'before');
  const bad: Array<Record<string, string>> = [
    { streamtype: 'data', port: '0', requestid: '2' },
    { streamtype: 'data', port: '65536', requestid: '3' },
    { streamtype: 'data', port: 'http', requestid: '4' },
    { streamtype: 'data', requestid: '5' },
    { streamtype: 'bogus', port: '80', requestid: '6' },
    { port: '80', requestid: '7' },
  ];
  const ids = bad.map((headers) => client.request(headers).id);
  assert.deepEqual(ids, [5, 7, 9, 11, 13, 15]);
  await waitFor(() => client.resets().length === ids.length, 2000, 'resets');
  assert.deepEqual(client.resets(), ids.map((id) => [id, 'CANCEL']));
  await echoes(good.data, 'after');
  assert.equal(r.counters.streams, 2, 'only the valid streams count');
  assert.equal(client.frames.filter((f) => f.type === 'HEADERS').length, 2, 'no SYN_REPLY for a rejected stream');
});

test('a lone stream times out: "timed out waiting for streams" on the error stream, RST for a lone data stream', async (t) => {
  const r = await rig(t, { streamPairTimeoutMs: 200 });
  const client = await r.connect();
  const lonelyError = client.request({ streamtype: 'error', port: '80', requestid: '7' });
  const lonelyData = client.request({ streamtype: 'data', port: '80', requestid: '8' });
  await Promise.all([lonelyError.sent, lonelyData.sent]);
  lonelyError.end();
  const text = collectUntilClose(lonelyError);
  const dataClosed = collectUntilClose(lonelyData);
  const started = Date.now();
  const got = await within(text, 2000, 'timeout text');
  assert.ok(Date.now() - started >= 150);
  assert.match(got.data.toString(), /^\(conn=&\{0x[0-9a-f]+\}, request=7\) timed out waiting for streams$/);
  assert.equal((await within(dataClosed, 2000, 'data reset')).ended, false);
  assert.deepEqual(client.resets(), [[3, 'CANCEL']]);
  assert.equal(r.counters.pairs, 0);
  // A complete pair afterwards is unaffected.
  const ok = await forward(client, '9', OPEN_PORT);
  await echoes(ok.data, 'fine');
});

test('half-close is not preserved: after our FIN the data stream FINs about 1 s later', async (t) => {
  const r = await rig(t);
  const client = await r.connect();
  const pair = await forward(client, '1', OPEN_PORT);
  await echoes(pair.data, 'abc');
  const ended = new Promise<number>((resolve) => pair.data.once('end', () => resolve(Date.now())));
  pair.data.on('data', () => {});
  const finAt = Date.now();
  pair.data.end();
  const endAt = await within(ended, 3000, 'data FIN');
  const delay = endAt - finAt;
  assert.ok(delay >= 800 && delay <= 2500, `FIN after ${delay} ms`);
  // The pod socket did not see our FIN at once: it was closed after the grace period.
  await waitFor(() => r.echo.endTimes[0] !== undefined, 1000, 'pod socket closed');
  assert.ok(r.echo.endTimes[0]! - finAt >= 800, `pod saw the close after ${r.echo.endTimes[0]! - finAt} ms`);
  const errorResult = await within(pair.errorText, 1000, 'error stream end');
  assert.deepEqual(errorResult, { text: '', ended: true }, 'error stream ends empty on success');
  assert.deepEqual(client.resets(), []);
});

test('requestid missing (old clients): error stream id N pairs with data stream id N+2', async (t) => {
  const r = await rig(t, { streamPairTimeoutMs: 1000 });
  const client = await r.connect();
  const rejected = client.request({ streamtype: 'data', port: 'nope' }); // id 1, rejected: shifts the next ids
  const error = client.request({ streamtype: 'error', port: '80' }); // id 3 → request "3"
  const data = client.request({ streamtype: 'data', port: '80' }); // id 5 → request "5 - 2" = "3"
  assert.deepEqual([error.id, data.id], [3, 5]);
  await Promise.all([rejected.sent, error.sent, data.sent]);
  error.end();
  await echoes(data, 'paired without requestid');
  assert.equal(r.counters.pairs, 1);
});

test('closePod closes that pod’s connections only', async (t) => {
  const r = await rig(t);
  const other: PortForwardTarget = { namespace: 'demo', name: 'web-1', uid: '0a0b0c0d-0000-4000-8000-000000000001' };
  const a = await r.connect(POD);
  const b = await r.connect(other);
  const pairA = await forward(a, '1', OPEN_PORT);
  const pairB = await forward(b, '1', OPEN_PORT);
  await echoes(pairA.data, 'a');
  await echoes(pairB.data, 'b');
  assert.equal(r.counters.openConnections, 2);
  // (Not events.once: the failure text and resets arrive just before the
  // close, and spdy-transport's answers to them may meet a closed socket: EPIPE.)
  const aClosed = new Promise((resolve) => a.socket.once('close', resolve));
  const dataAClosed = collectUntilClose(pairA.data);
  r.kubelet.closePod(POD.uid);
  await within(aClosed, 1000, 'connection closed');
  assert.equal((await within(dataAClosed, 1000, 'stream closed')).ended, false);
  await waitFor(() => r.counters.openConnections === 1, 1000, 'counter');
  await echoes(pairB.data, 'b still up');
  await sleep(10);
  assert.ok(!b.socket.destroyed);
});

test('the pod closes first: its last bytes, then FIN on the data stream within ~1 s', async (t) => {
  const r = await rig(t);
  const client = await r.connect();
  const pair = await forward(client, '1', OPEN_PORT);
  await echoes(pair.data, 'x');
  const received = collectUntilClose(pair.data);
  // Make the pod app close its socket right after one more reply.
  await waitFor(() => r.echo.sockets.size === 1);
  const [podSocket] = [...r.echo.sockets];
  podSocket!.unpipe(podSocket!);
  podSocket!.end('last words');
  const started = Date.now();
  const result = await within(received, 3000, 'data stream end');
  assert.equal(result.data.toString(), 'last words');
  assert.ok(result.ended, 'FIN, not RST');
  assert.ok(Date.now() - started <= 2500, `FIN after ${Date.now() - started} ms`);
  assert.deepEqual(await within(pair.errorText, 1000, 'error stream end'), { text: '', ended: true });
});

test('the client resets the data stream mid-copy: the pod socket closes and the error stream still ends', async (t) => {
  const r = await rig(t);
  const client = await r.connect();
  const pair = await forward(client, '1', OPEN_PORT);
  await echoes(pair.data, 'x');
  await waitFor(() => r.echo.sockets.size === 1);
  const [podSocket] = [...r.echo.sockets];
  const podClosed = once(podSocket!, 'close');
  pair.data.abort();
  await within(podClosed, 1500, 'pod socket closed');
  // Real kubelet: portForward() returns and its deferred Close() FINs the error stream.
  assert.deepEqual(await within(pair.errorText, 1500, 'error stream end'), { text: '', ended: true });
});

test('our own SpdySession client, client-go style: the refusal text survives the RST, then a pair works', async (t) => {
  const r = await rig(t);
  const socket = await connect(r.port);
  const session = new SpdySession(socket, { role: 'client' });
  t.after(() => session.close());
  const pair = async (requestid: string, port: number) => {
    const error = session.openStream({ streamtype: 'error', port: String(port), requestid });
    error.on('error', () => {});
    await once(error, 'reply');
    error.end(); // client-go: close the write side at once, read to EOF in the background
    const data = session.openStream({ streamtype: 'data', port: String(port), requestid });
    data.on('error', () => {});
    return { error, data };
  };
  const refused = await pair('0', 81);
  let text = '';
  let failure: unknown;
  try {
    for await (const chunk of refused.error) text += (chunk as Buffer).toString(); // paused-mode reading
  } catch (error) {
    failure = error;
  }
  assert.match(text, new RegExp(`^error forwarding port 81 to pod ${POD.name}, uid ${POD.uid}: .*connection refused`));
  assert.ok(failure instanceof StreamResetError && failure.status === 5, 'then the RST CANCEL');
  const ok = await pair('1', OPEN_PORT);
  const back = readBytes(ok.data, 5);
  ok.data.write('hello');
  assert.equal((await back).toString(), 'hello');
  assert.ok(!session.closed);
});
