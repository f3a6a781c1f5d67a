/**
 * Admission under load (admission.ts): connections beyond the handshakes in
 * flight wait instead of being closed, so a burst of real clients is served
 * whole; and silent sockets make room, so a flood of them cannot lock a real
 * client out. Both with real sockets, the `socks` npm client and curl.
 */
import * as assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SocksClient } from 'socks';
import { curl } from '../helpers/e2e-procs.js';
import { RawClient, socks5ConnectDomain, startProxyFixture, waitFor, type ProxyFixture } from '../helpers/proxy-fixtures.js';

const SOCKS5_OK = Buffer.from([0x05, 0x00, 0x05, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);

/** Opens `n` sockets that never send a byte; resolves once all are connected. */
async function silentSockets(port: number, n: number): Promise<Socket[]> {
  const sockets: Socket[] = [];
  const batch = 200;
  for (let i = 0; i < n; i += batch) {
    const opened = await Promise.all(
      Array.from({ length: Math.min(batch, n - i) }, () =>
        new Promise<Socket>((resolve, reject) => {
          const s = connect({ port, host: '127.0.0.1' });
          s.on('error', () => {});
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        }),
      ),
    );
    sockets.push(...opened);
  }
  return sockets;
}

/** One SOCKS5 CONNECT to echo.test through the `socks` client and a 1-line echo; resolves true when the echo came back. */
async function socksEcho(port: number, i: number): Promise<boolean> {
  const { socket } = await SocksClient.createConnection({
    proxy: { host: '127.0.0.1', port, type: 5 },
    command: 'connect',
    destination: { host: 'echo.test', port: 7 },
    timeout: 120_000,
  });
  const line = `hello ${i}\n`;
  socket.write(line);
  let got = '';
  for await (const chunk of socket) {
    got += String(chunk);
    if (got.length >= line.length) break;
  }
  socket.destroy();
  return got === line;
}

describe('beyond maxHandshakes', () => {
  let f: ProxyFixture;
  before(async () => {
    f = await startProxyFixture({ maxHandshakes: 5, silentGraceMs: 100, handshakeTimeoutMs: 5000 });
  });
  after(async () => {
    await f.close();
  });

  test('a new connection waits (is not closed) while the slots hold clients mid-handshake, and is served when one finishes', async () => {
    // Five clients that sent part of a greeting: not silent, never evicted.
    const partial = await Promise.all(Array.from({ length: 5 }, () => RawClient.connect(f.port)));
    for (const c of partial) c.write([0x05]);
    await waitFor(() => f.proxy.stats().handshakes === 5, 'five handshakes');
    const extra = await RawClient.connect(f.port);
    extra.write(Buffer.concat([Buffer.from([0x05, 0x01, 0x00]), socks5ConnectDomain('echo.test', 7)]));
    await waitFor(() => f.proxy.stats().waiting === 1, 'one waiting');
    await sleep(400); // well past the silent grace time: partial clients are not silent
    assert.equal(extra.closed || extra.ended, false, 'the waiting client was closed');
    assert.equal(extra.buffered.length, 0, 'the waiting client was answered before it had a slot');
    assert.equal(f.proxy.stats().evicted, 0);
    // One finishes its handshake: the waiting client gets the slot and is served.
    const first = partial[0];
    assert.ok(first);
    first.write(Buffer.concat([Buffer.from([0x01, 0x00]), socks5ConnectDomain('echo.test', 7)]));
    assert.deepEqual(await first.read(SOCKS5_OK.length), SOCKS5_OK);
    assert.deepEqual(await extra.read(SOCKS5_OK.length), SOCKS5_OK);
    extra.write('ping');
    assert.equal((await extra.read(4)).toString(), 'ping');
    for (const c of [...partial, extra]) c.destroy();
    await waitFor(() => f.proxy.stats().openSockets === 0 && f.proxy.stats().waiting === 0, 'sockets closed');
  });

  test('silent connections are closed, oldest first, to make room for waiting ones; a silent one alone is left to its deadline', async () => {
    const before = f.proxy.stats().evicted;
    const silent = await Promise.all(Array.from({ length: 5 }, () => RawClient.connect(f.port)));
    await waitFor(() => f.proxy.stats().handshakes === 5, 'five silent handshakes');
    await sleep(300); // nobody waits: nothing is evicted
    assert.equal(f.proxy.stats().evicted - before, 0);
    assert.ok(silent.every((c) => !c.closed && !c.ended));
    const real = await RawClient.connect(f.port);
    real.write(Buffer.concat([Buffer.from([0x05, 0x01, 0x00]), socks5ConnectDomain('echo.test', 7)]));
    assert.deepEqual(await real.read(SOCKS5_OK.length), SOCKS5_OK);
    assert.equal(f.proxy.stats().evicted - before, 1, 'exactly the room needed');
    // The oldest silent one went.
    await silent[0]?.waitClosed();
    assert.ok(silent.slice(1).every((c) => !c.closed && !c.ended));
    const record = f.records.find((r) => r.error?.code === 'OVERLOADED');
    assert.match(record?.error?.message ?? '', /^closed to make room: sent nothing for 100 ms while 5 handshakes were in flight/);
    for (const c of [...silent, real]) c.destroy();
    await waitFor(() => f.proxy.stats().openSockets === 0, 'sockets closed');
  });
});

describe('floods and bursts (default limits)', () => {
  let f: ProxyFixture;
  before(async () => {
    f = await startProxyFixture({});
  });
  after(async () => {
    await f.close();
  });

  test('3,000 silent sockets, re-opened as they are closed: curl through the proxy succeeds every time', async () => {
    let open = await silentSockets(f.port, 3000);
    let stop = false;
    // The attacker re-opens every socket the proxy closes, keeping 3,000 in place.
    const attacker = (async () => {
      while (!stop) {
        const alive = open.filter((s) => !s.destroyed && !s.readableEnded);
        const missing = 3000 - alive.length;
        open = missing > 0 ? [...alive, ...(await silentSockets(f.port, missing))] : alive;
        await sleep(50);
      }
    })();
    try {
      const webUrl = `http://web.test:${f.web.port}/x`;
      for (let i = 0; i < 5; i++) {
        const viaHttp = await curl(['-x', `http://127.0.0.1:${f.port}`, webUrl], { maxTime: 30 });
        assert.equal(viaHttp.code, 0, viaHttp.output);
        assert.match(viaHttp.stdout, /"url":"\/x"/);
        const viaSocks = await curl(['--socks5-hostname', `127.0.0.1:${f.port}`, webUrl], { maxTime: 30 });
        assert.equal(viaSocks.code, 0, viaSocks.output);
        assert.match(viaSocks.stdout, /"url":"\/x"/);
      }
      assert.ok(f.proxy.stats().evicted > 0, 'the flood did fill the slots');
    } finally {
      stop = true;
      await attacker;
      for (const s of open) s.destroy();
    }
    await waitFor(() => f.proxy.stats().openSockets === 0 && f.proxy.stats().waiting === 0, 'flood gone', 30_000);
  });

  for (const n of [1000, 5000]) {
    test(`${n.toLocaleString('en')} SOCKS5 clients at once (the socks npm client): every one is served`, async () => {
      const evictedBefore = f.proxy.stats().evicted;
      const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => socksEcho(f.port, i)));
      const failed = results.filter((r) => r.status === 'rejected' || r.value !== true);
      assert.equal(failed.length, 0, `${failed.length} of ${n} failed, e.g. ${String((failed[0] as PromiseRejectedResult | undefined)?.reason)}`);
      assert.equal(f.proxy.stats().evicted - evictedBefore, 0);
      await waitFor(() => f.proxy.stats().openSockets === 0, 'all closed', 30_000);
    });
  }
});
