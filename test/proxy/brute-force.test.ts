/**
 * Guessing `--auth` (issue 9): answers to wrong credentials slow down per
 * client address (SOCKS5 RFC 1929, HTTP 407 for absolute-form and CONNECT,
 * the status pages' 401), while the right password — from the same
 * loopback address — is answered at once every time, and a request without
 * credentials (the challenge round trip) is never slowed. A delayed answer
 * holds a handshake slot; a client that leaves frees it. Real sockets, curl.
 * Bounds are generous: the delays are 250 ms doubling to 3 s after five free
 * failures (auth-throttle.ts), and the checks only ask for the order of that.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectionLog } from '../../src/cli/connection-log.js';
import { curl } from '../helpers/e2e-procs.js';
import { RawClient, socks5ConnectDomain, startProxyFixture, userPass, waitFor, type ProxyFixture } from '../helpers/proxy-fixtures.js';
import { basic, get } from '../helpers/status.js';

const USER = 'alice';
const PASSWORD = 'correct horse';
const AUTH = { username: USER, password: PASSWORD };

/** A SOCKS5 login with username/password; whether it succeeded and how long the answer took. */
async function socksLogin(port: number, password: string): Promise<{ ok: boolean; ms: number }> {
  const started = performance.now();
  const c = await RawClient.connect(port);
  c.write(Buffer.concat([Buffer.from([0x05, 0x01, 0x02]), userPass(USER, password)]));
  const reply = await c.read(4, 15_000);
  c.destroy();
  assert.deepEqual(reply.subarray(0, 3), Buffer.from([0x05, 0x02, 0x01]));
  return { ok: reply[3] === 0x00, ms: performance.now() - started };
}

/** One raw CONNECT with these headers; the status code and how long it took. */
async function connectRequest(port: number, headers: string): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  const c = await RawClient.connect(port);
  c.write(`CONNECT echo.test:7 HTTP/1.1\r\nHost: echo.test:7\r\n${headers}\r\n`);
  const head = await c.readUntil('\r\n', 15_000);
  c.destroy();
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), ms: performance.now() - started };
}

const socksUrl = (port: number, password: string): string => `socks5h://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}`;

describe('SOCKS5: a client hammering wrong passwords', () => {
  let f: ProxyFixture;
  before(async () => {
    f = await startProxyFixture({ auth: AUTH });
  });
  after(() => f.close());

  test('gets measurably slower, while the right password from the same address succeeds at once each time', async (t) => {
    const start = performance.now();
    const elapsed = (): number => performance.now() - start;
    const wrongAnsweredAt: number[] = [];
    const hammer = (async () => {
      while (elapsed() < 6000) {
        const { ok } = await socksLogin(f.port, `guess ${wrongAnsweredAt.length}`);
        assert.equal(ok, false);
        wrongAnsweredAt.push(elapsed());
      }
    })();
    const rawRight: number[] = [];
    const curlRight: number[] = [];
    const rightClient = (async () => {
      while (elapsed() < 5500) {
        const login = await socksLogin(f.port, PASSWORD);
        assert.equal(login.ok, true);
        rawRight.push(login.ms);
        const res = await curl(['-o', '/dev/null', '-w', '%{http_code}', '-x', socksUrl(f.port, PASSWORD), 'http://web.test/']);
        assert.equal(res.stdout, '200', res.output);
        curlRight.push(res.ms);
        await sleep(200);
      }
    })();
    await Promise.all([hammer, rightClient]);

    const firstTwoSeconds = wrongAnsweredAt.filter((t) => t < 2000).length;
    const laterTwoSeconds = wrongAnsweredAt.filter((t) => t >= 4000 && t < 6000).length;
    const figures = `wrong answers at ${wrongAnsweredAt.map(Math.round).join(', ')} ms; right logins ${rawRight.map(Math.round).join(', ')} ms, curl ${curlRight.map(Math.round).join(', ')} ms`;
    // Unthrottled, one loopback client gets hundreds of answers in 2 s; here five are free, then 250, 500, 1000 ms…
    assert.ok(firstTwoSeconds >= 6 && firstTwoSeconds <= 12, `first 2 s: ${firstTwoSeconds} wrong answers; ${figures}`);
    // …and seconds 4 to 6 fall under the 3 s cap: at most one answer.
    assert.ok(laterTwoSeconds <= 1, `seconds 4-6: ${laterTwoSeconds} wrong answers; ${figures}`);
    assert.ok(rawRight.length >= 5 && curlRight.length >= 5, figures);
    // The cap is 3,000 ms and the hammering client is well past it: a right login delayed like a wrong one would show.
    assert.ok(Math.max(...rawRight) < 1000, `a right login waited: ${figures}`);
    assert.ok(Math.max(...curlRight) < 2500, `curl with the right password waited: ${figures}`);
    t.diagnostic(figures);

    // Logged as one line at once, then one summary line per interval, each record saying its delay.
    const failures = f.records.filter((r) => r.error?.code === 'PROXY_AUTH');
    assert.equal(failures.length, wrongAnsweredAt.length);
    assert.match(failures.at(-1)?.error?.message ?? '', /^wrong proxy username or password \(SOCKS5\); answered after 3000 ms \(\d+ failed logins in 60 s from 127\.0\.0\.1\)$/);
    assert.ok(!JSON.stringify(f.records).includes('guess'), 'a guessed password was logged');
    const lines: string[] = [];
    const log = new ConnectionLog({ verbose: false, print: (l) => lines.push(l) });
    for (const r of failures) log.record(r);
    log.close();
    assert.equal(lines.length, 2, lines.join('\n'));
    assert.match(lines[1] ?? '', new RegExp(`^127\\.0\\.0\\.1: ${failures.length - 1} more failed proxy logins in the last 10 s`));
  });
});

describe('HTTP proxy, CONNECT and the status pages share the count of the address', () => {
  let f: ProxyFixture;
  before(async () => {
    f = await startProxyFixture({ auth: AUTH });
  });
  after(() => f.close());

  test('curl --proxy-user with wrong passwords: the sixth 407 waits, then longer; no credentials and the right ones are answered at once', async (t) => {
    const wrong: number[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await curl(['-o', '/dev/null', '-w', '%{http_code}', '--proxy-user', `${USER}:wrong ${i}`, '-x', `http://127.0.0.1:${f.port}`, 'http://web.test/']);
      assert.equal(res.stdout, '407', res.output);
      wrong.push(res.ms);
    }
    const figures = `407 after ${wrong.map(Math.round).join(', ')} ms`;
    assert.ok((wrong[5] ?? 0) >= 240 && (wrong[6] ?? 0) >= 490 && (wrong[7] ?? 0) >= 990, figures);
    t.diagnostic(figures);

    // The next wrong guess would wait 2 s; these are not guesses, or are right.
    const challenge = await curl(['-o', '/dev/null', '-w', '%{http_code}', '-x', `http://127.0.0.1:${f.port}`, 'http://web.test/']);
    assert.equal(challenge.stdout, '407');
    const right = await curl(['-o', '/dev/null', '-w', '%{http_code}', '--proxy-user', `${USER}:${PASSWORD}`, '-x', `http://127.0.0.1:${f.port}`, 'http://web.test/']);
    assert.equal(right.stdout, '200', right.output);
    // --proxy-anyauth: first without credentials (407), then with them on the same connection.
    const anyauth = await curl(['-o', '/dev/null', '-w', '%{http_code}', '--proxy-anyauth', '--proxy-user', `${USER}:${PASSWORD}`, '-x', `http://127.0.0.1:${f.port}`, 'http://web.test/']);
    assert.equal(anyauth.stdout, '200', anyauth.output);
    for (const [what, res] of [['no credentials', challenge], ['right', right], ['anyauth', anyauth]] as const) {
      assert.ok(res.ms < 1800, `${what}: ${Math.round(res.ms)} ms; the next wrong answer waits 2000 ms`);
    }
    assert.equal(f.records.filter((r) => r.error?.code === 'PROXY_AUTH').length, 8 + 1 + 1, 'the challenge requests are logged, not counted');

    // CONNECT with a wrong password: the ninth guess of this address.
    const connect = await connectRequest(f.port, `Proxy-Authorization: ${basic(USER, 'nope')}\r\n`);
    assert.equal(connect.status, 407);
    assert.ok(connect.ms >= 1990, `CONNECT 407 after ${Math.round(connect.ms)} ms`);
    const rightConnect = await connectRequest(f.port, `Proxy-Authorization: ${basic(USER, PASSWORD)}\r\n`);
    assert.equal(rightConnect.status, 200);
    assert.ok(rightConnect.ms < 1000, `right CONNECT after ${Math.round(rightConnect.ms)} ms`);

    // The status page: a browser's first request (no credentials) at once; a wrong password after 3 s; the right one at once.
    let started = performance.now();
    assert.equal((await get(f.port, '/status.json')).status, 401);
    assert.ok(performance.now() - started < 1000);
    started = performance.now();
    assert.equal((await get(f.port, '/status.json', { Authorization: basic(USER, 'nope') })).status, 401);
    assert.ok(performance.now() - started >= 2990, `status 401 after ${Math.round(performance.now() - started)} ms`);
    started = performance.now();
    assert.equal((await get(f.port, '/status.json', { Authorization: basic(USER, PASSWORD) })).status, 200);
    assert.ok(performance.now() - started < 1000);
    // And the SOCKS5 front counts the same address: its next wrong answer waits the cap too.
    const socks = await socksLogin(f.port, 'nope');
    assert.ok(!socks.ok && socks.ms >= 2990, `SOCKS5 after ${Math.round(socks.ms)} ms`);
  });
});

describe('a delayed answer and the handshake slots', () => {
  let f: ProxyFixture;
  before(async () => {
    f = await startProxyFixture({ auth: AUTH, maxHandshakes: 4 });
    for (let i = 0; i < 5; i++) assert.equal((await socksLogin(f.port, 'free')).ok, false);
  });
  after(() => f.close());

  test('a waiting SOCKS5 client keeps its slot and is not read; one that leaves frees it at once', async () => {
    const c = await RawClient.connect(f.port);
    c.write(Buffer.concat([Buffer.from([0x05, 0x01, 0x02]), userPass(USER, 'wrong'), socks5ConnectDomain('echo.test', 7)]));
    assert.deepEqual(await c.read(2), Buffer.from([0x05, 0x02]));
    await sleep(100);
    assert.equal(c.buffered.length, 0, 'answered before its delay');
    assert.equal(f.proxy.stats().handshakes, 1);
    c.destroy();
    await waitFor(() => f.proxy.stats().handshakes === 0, 'the slot freed');
    assert.equal(f.connector.targets.length, 0, 'the request after the wrong password was acted on');
  });

  test('a waiting HTTP answer takes a slot for the wait', async () => {
    const c = await RawClient.connect(f.port);
    c.write(`GET http://web.test/ HTTP/1.1\r\nHost: web.test\r\nProxy-Authorization: ${basic(USER, 'wrong')}\r\n\r\n`);
    await sleep(150);
    assert.equal(c.buffered.length, 0, 'answered before its delay');
    assert.equal(f.proxy.stats().handshakes, 1);
    assert.match(await c.readUntil('\r\n', 5000), /^HTTP\/1\.1 407 /);
    await waitFor(() => f.proxy.stats().handshakes === 0, 'the slot freed');
    c.destroy();
  });

  test('a flood of wrong passwords beyond the slots waits unread, and a right client behind it is served, not refused', async (t) => {
    const flood = await Promise.all(Array.from({ length: 8 }, () => RawClient.connect(f.port)));
    for (const c of flood) c.write(Buffer.concat([Buffer.from([0x05, 0x01, 0x02]), userPass(USER, 'flood')]));
    await waitFor(() => f.proxy.stats().handshakes === 4 && f.proxy.stats().waiting === 4, 'four delayed, four parked');
    const started = performance.now();
    const right = await socksLogin(f.port, PASSWORD);
    const waited = performance.now() - started;
    assert.equal(right.ok, true);
    // It waited for a slot (first come, first served) — seconds, never a refusal or the 10 s handshake deadline.
    assert.ok(waited < 9000, `the right client waited ${Math.round(waited)} ms`);
    t.diagnostic(`right login behind 8 delayed wrong ones with 4 slots: ${Math.round(waited)} ms`);
    for (const c of flood) {
      const reply = await c.read(4, 15_000);
      assert.deepEqual(reply, Buffer.from([0x05, 0x02, 0x01, 0x01]));
      c.destroy();
    }
  });
});
