/**
 * The listener: refusing to serve other machines without credentials,
 * option checks, limits (handshake deadline, handshakes in flight), clients
 * that vanish, half-close, backpressure, graceful close and the counters.
 */
import * as assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubesocksError } from '../../src/errors.js';
import { createProxyServer } from '../../src/proxy/server.js';
import { RawClient, socks5ConnectDomain, startProxyFixture, TestConnector, waitFor, type ProxyFixture } from '../helpers/proxy-fixtures.js';

const SOCKS5_OK = Buffer.from([0x05, 0x00, 0x05, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);

async function socks5Tunnel(port: number, host: string, targetPort = 7): Promise<RawClient> {
  const c = await RawClient.connect(port);
  c.write(Buffer.concat([Buffer.from([0x05, 0x01, 0x00]), socks5ConnectDomain(host, targetPort)]));
  assert.deepEqual(await c.read(SOCKS5_OK.length), SOCKS5_OK);
  return c;
}

describe('listen', () => {
  const connector = new TestConnector({ echo: 1, web: 1 });

  test('refuses a non-loopback address without credentials, with a one-line reason', async () => {
    for (const host of ['0.0.0.0', '::', '', '192.168.1.10', 'example.com']) {
      const proxy = createProxyServer({ connector });
      await assert.rejects(proxy.listen(host, 0), (err: unknown) => {
        assert.ok(err instanceof KubesocksError);
        assert.equal(err.code, 'FORBIDDEN');
        assert.match(err.message, /^refusing to listen on .+ without credentials: [^\n]+$/);
        return true;
      });
      await proxy.close();
    }
  });

  test('listens on all interfaces when credentials are set, and reports the real port', async () => {
    const proxy = createProxyServer({ connector, auth: { username: 'u', password: 'p' } });
    const address = await proxy.listen('0.0.0.0', 0);
    assert.equal(address.host, '0.0.0.0');
    assert.ok(address.port > 0);
    await proxy.close();
  });

  test('a port in use rejects with the system error', async () => {
    const a = createProxyServer({ connector });
    const { port } = await a.listen('127.0.0.1', 0);
    const b = createProxyServer({ connector });
    await assert.rejects(b.listen('127.0.0.1', port), { code: 'EADDRINUSE' });
    await a.close();
    await b.close();
  });

  test('options are checked early with exact messages', () => {
    assert.throws(() => createProxyServer({ connector, handshakeTimeoutMs: -1 }), {
      name: 'TypeError',
      message: 'Expected the `handshakeTimeoutMs` option to be a positive integer, got -1',
    });
    assert.throws(() => createProxyServer({ connector, maxHandshakes: 1.5 }), /`maxHandshakes` option to be a positive integer, got 1.5/);
    assert.throws(() => createProxyServer({ connector, auth: { username: '', password: 'x' } }), /`auth.username` to be 1 to 255 bytes/);
    assert.throws(() => createProxyServer({ connector, auth: { username: 'a:b', password: 'x' } }), /must not|not to contain ":"/);
    assert.throws(() => createProxyServer({ connector: {} as TestConnector }), /`connector` option/);
  });
});

describe('limits and lifecycle', () => {
  let f: ProxyFixture;
  before(async () => {
    f = await startProxyFixture({ handshakeTimeoutMs: 150, maxHandshakes: 5 });
  });
  after(async () => {
    await f.close();
  });

  test('handshake timeout closes silent, partial-SOCKS and partial-HTTP clients, and counts them', async () => {
    const before = f.proxy.stats().handshakeTimeouts;
    const silent = await RawClient.connect(f.port);
    const socks = await RawClient.connect(f.port);
    socks.write([0x05, 0x01, 0x00, 0x05, 0x01]);
    const http = await RawClient.connect(f.port);
    http.write('GET http://web.test/ HTTP/1.1\r\nX-Slow: ');
    await Promise.all([silent.waitClosed(), socks.waitClosed(), http.waitClosed()]);
    assert.equal(f.proxy.stats().handshakeTimeouts - before, 3);
    assert.ok(f.records.filter((r) => r.error?.code === 'TIMEOUT').length >= 3);
  });

  test('an idle keep-alive HTTP connection is closed after the same deadline', async () => {
    const c = await RawClient.connect(f.port);
    c.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    assert.match(await c.readUntil('ok\n'), /^HTTP\/1\.1 200 OK/);
    const start = Date.now();
    await c.waitClosed();
    assert.ok(Date.now() - start >= 100);
  });

  test('a client that vanishes mid-handshake is cleaned up', async () => {
    const c = await RawClient.connect(f.port);
    c.write([0x05, 0x02, 0x00]);
    await sleep(10);
    c.end();
    await c.waitClosed();
    await waitFor(() => f.proxy.stats().openSockets === 0 && f.proxy.stats().handshakes === 0, 'baseline');
  });

  test('a client that vanishes while the Connector works aborts its signal', async () => {
    for (const how of ['destroy', 'end'] as const) {
      const c = await RawClient.connect(f.port);
      c.write(Buffer.concat([Buffer.from([0x05, 0x01, 0x00]), socks5ConnectDomain('hang.test', 1)]));
      await waitFor(() => f.connector.targets.some((t) => t.host === 'hang.test' && t.port === 1), 'connect called');
      c[how]();
      await waitFor(() => f.connector.aborted.filter((t) => t.host === 'hang.test').length === (how === 'destroy' ? 1 : 2), 'abort');
      f.connector.targets.length = 0;
    }
  });

  test('a stream that arrives after the client left is destroyed', async () => {
    const c = await RawClient.connect(f.port);
    c.write('CONNECT late.test:1 HTTP/1.1\r\n\r\n');
    await waitFor(() => f.connector.targets.some((t) => t.host === 'late.test'), 'connect called');
    c.destroy();
    await waitFor(() => f.connector.lateStreams.length === 1, 'late stream');
    await waitFor(() => f.connector.lateStreams[0]?.destroyed === true, 'late stream destroyed');
  });

  test('an absolute-form client that leaves while the Connector works aborts it', async () => {
    const c = await RawClient.connect(f.port);
    c.write('GET http://hang.test:2/ HTTP/1.1\r\nHost: hang.test:2\r\n\r\n');
    await waitFor(() => f.connector.targets.some((t) => t.host === 'hang.test' && t.port === 2), 'connect called');
    c.destroy();
    await waitFor(() => f.connector.aborted.some((t) => t.host === 'hang.test' && t.port === 2), 'abort');
  });

  test('half-close through SOCKS5: the client ends, the echo still answers, then ends', async () => {
    const c = await socks5Tunnel(f.port, 'echo.test');
    c.write('last words');
    c.end();
    assert.equal((await c.readToEnd()).toString(), 'last words');
    await c.waitClosed();
  });

  test('half-close through CONNECT, with the payload and FIN in the first packet', async () => {
    const socket = connect({ port: f.port, host: '127.0.0.1', allowHalfOpen: true });
    await once(socket, 'connect');
    socket.end('CONNECT echo.test:7 HTTP/1.1\r\n\r\nbye');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    await once(socket, 'end');
    assert.equal(Buffer.concat(chunks).toString(), 'HTTP/1.1 200 Connection established\r\n\r\nbye');
    socket.destroy();
  });

  test('the destination ending first ends the client, which can still send', async () => {
    const c = await socks5Tunnel(f.port, `127.0.0.1`, f.web.port);
    c.write('GET / HTTP/1.0\r\n\r\n');
    const response = (await c.readToEnd()).toString();
    assert.match(response, /^HTTP\/1\.1 200 OK/);
    c.destroy();
  });

  test('a destination error destroys the client side too', async () => {
    const c = await socks5Tunnel(f.port, 'echo.test');
    const streams = f.connector.streams;
    const stream = streams.at(-1);
    assert.ok(stream);
    stream.destroy(new Error('boom'));
    await c.waitClosed();
    await waitFor(() => f.records.some((r) => r.error?.message === 'boom'), 'record');
    assert.equal(f.records.find((r) => r.error?.message === 'boom')?.error?.code, 'CONNECTION_LOST');
  });

  test('a client reset mid-tunnel destroys the destination stream', async () => {
    const c = await socks5Tunnel(f.port, 'echo.test');
    const stream = f.connector.streams.at(-1);
    c.write('x');
    await c.read(1);
    c.socket.resetAndDestroy();
    await waitFor(() => stream?.destroyed === true, 'destination destroyed');
  });

  test('an HTTP client leaving mid-response destroys the destination stream', async () => {
    const c = await RawClient.connect(f.port);
    c.write('GET http://web.test/big?n=50000000 HTTP/1.1\r\nHost: web.test\r\n\r\n');
    await c.readUntil('\r\n\r\n');
    const stream = f.connector.streams.at(-1);
    c.destroy();
    await waitFor(() => stream?.destroyed === true, 'destination destroyed');
    // A client leaving early is normal: logged without an error, with what was sent so far.
    await waitFor(() => f.records.some((r) => r.target === 'web.test:80' && r.error === undefined && r.bytesDown < 50_000_000), 'record');
  });

  test('backpressure: 16 MiB each way arrives intact', async () => {
    const c = await socks5Tunnel(f.port, 'echo.test');
    const data = randomBytes(16 * 1024 * 1024);
    const sent = createHash('sha256').update(data).digest('hex');
    const received = createHash('sha256');
    let n = 0;
    c.socket.removeAllListeners('data');
    const done = new Promise<void>((resolve) => {
      c.socket.on('data', (chunk: Buffer) => {
        received.update(chunk);
        n += chunk.length;
        if (n === data.length) resolve();
      });
    });
    c.socket.end(data);
    await done;
    assert.equal(received.digest('hex'), sent);
    c.destroy();
  });

  test('onConnection throwing does not take the proxy down', async () => {
    const errors: KubesocksError[] = [];
    const g = await startProxyFixture({
      onConnection: () => {
        throw new Error('logger broke');
      },
      onError: (e) => errors.push(e),
    });
    try {
      const c = await socks5Tunnel(g.port, 'missing.test').catch(() => null);
      assert.equal(c, null);
      await waitFor(() => errors.length === 1, 'error reported');
      assert.match(errors[0]?.message ?? '', /logger broke/);
      assert.equal(errors[0]?.code, 'INTERNAL');
    } finally {
      await g.close();
    }
  });

  test('after all that, the counters are back to baseline and no handler threw', async () => {
    await waitFor(() => f.proxy.stats().openSockets === 0, 'no open sockets');
    assert.equal(f.proxy.stats().handshakes, 0);
    assert.deepEqual(f.errors, []);
  });
});

describe('close', () => {
  test('stops accepting, closes idle connections at once, lets tunnels finish within the grace period', async () => {
    const f = await startProxyFixture();
    try {
      const idleHttp = await RawClient.connect(f.port);
      idleHttp.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      await idleHttp.readUntil('ok\n');
      const handshaking = await RawClient.connect(f.port);
      handshaking.write([0x05]);
      const tunnel = await socks5Tunnel(f.port, 'echo.test');
      await waitFor(() => f.proxy.stats().openSockets === 3, 'three sockets');

      const closed = f.proxy.close(300);
      let done = false;
      void closed.then(() => {
        done = true;
      });
      await Promise.all([idleHttp.waitClosed(), handshaking.waitClosed()]);
      tunnel.write('still here');
      assert.equal((await tunnel.read(10)).toString(), 'still here');
      assert.equal(done, false);
      await assert.rejects(RawClient.connect(f.port));
      await tunnel.waitClosed(1000);
      await closed;
      assert.equal(f.proxy.stats().openSockets, 0);
    } finally {
      await f.close();
    }
  });

  test('a tunnel that ends during the grace period lets close resolve early', async () => {
    const f = await startProxyFixture();
    try {
      const tunnel = await socks5Tunnel(f.port, 'echo.test');
      const start = Date.now();
      const closed = f.proxy.close(5000);
      tunnel.end();
      await tunnel.waitClosed();
      await closed;
      assert.ok(Date.now() - start < 2000);
    } finally {
      await f.close();
    }
  });
});
