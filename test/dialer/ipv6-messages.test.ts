/**
 * IPv6 literals in messages carry brackets (`[::1]:1`, RFC 3986 §3.2.2):
 * `::1:1` reads as the address ::0.1:1 or as port 1 of ::1, nobody can tell.
 * Through a real `kubesocks serve` (a child process against the simulated
 * cluster): a direct dial that is refused, asked for by SOCKS5 (the log line)
 * and by HTTP CONNECT (the 502 body); and `kubesocks forward` listening on ::1,
 * both its "Forwarding from" line and its "unable to listen" line.
 *
 * These need the IPv6 loopback. A machine without it is told, never skipped
 * in silence: under CI=true its absence fails the test.
 */
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import { networkInterfaces } from 'node:os';
import { connect, createServer, type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { demoScenario } from '../../src/sim/scenario.js';
import { Proc, REPO_ROOT, cleanEnv } from '../helpers/e2e-procs.js';
import { startTestCluster, type TestCluster } from '../helpers/sim.js';
import { TEST_TRANSPORT_ARGS } from '../helpers/transport.js';

/** Whether ::1 is configured: `ip -6 addr show lo` as Node sees it. */
const hasIPv6Loopback = Object.values(networkInterfaces()).some((addresses) => addresses?.some((a) => a.family === 'IPv6' && a.address === '::1'));
const skip = hasIPv6Loopback || process.env.CI === 'true' ? false : 'this machine has no IPv6 loopback (::1 is not configured on lo: see `ip -6 addr show lo`)';

/** A port on ::1 where nothing listens (bound, then closed). */
async function refusingPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '::1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Sends `bytes` and collects what comes back until the proxy closes the socket or `until` matches. */
async function exchange(port: number, bytes: Buffer | string, until?: (received: Buffer) => boolean): Promise<Buffer> {
  const socket = connect({ port, host: '127.0.0.1' });
  socket.on('error', () => {});
  await once(socket, 'connect');
  let received = Buffer.alloc(0);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within 10 s: ${JSON.stringify(received.toString('latin1'))}`));
    }, 10_000);
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(received);
    };
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (until?.(received)) done();
    });
    socket.once('close', done);
    socket.write(bytes);
  });
}

describe('IPv6 literals are bracketed in messages', { skip }, () => {
  let t: TestCluster;
  let serve: Proc;
  let port: number;

  before(async () => {
    assert.ok(hasIPv6Loopback, 'CI=true and this machine has no IPv6 loopback (::1 on lo): configure it (`ip -6 addr add ::1/128 dev lo`)');
    t = await startTestCluster(demoScenario());
    serve = new Proc(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '--kubeconfig', t.kubeconfig, '--listen', '127.0.0.1:0', ...TEST_TRANSPORT_ARGS], {
      cwd: REPO_ROOT,
      env: cleanEnv(),
    });
    port = Number((await serve.waitFor(/listening on 127\.0\.0\.1:(\d+)/, { stream: 'stderr', timeoutMs: 30_000 }))[1]);
  });

  after(async () => {
    serve?.signal('SIGTERM');
    await serve?.settle(8000);
    await t?.close();
  });

  test('SOCKS5 to a refusing [::1]:PORT: reply 0x05 connection refused, and the log line brackets the address', async () => {
    const target = await refusingPort();
    const from = serve.stderr.length;
    const request = Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, 4]), Buffer.alloc(15), Buffer.from([1, target >> 8, target & 0xff])]);
    const answer = await exchange(port, request, (r) => r.length >= 12);
    assert.deepEqual([...answer.subarray(0, 2)], [5, 0], 'no authentication');
    assert.equal(answer[2], 5);
    assert.equal(answer[3], 5, 'SOCKS5 reply 0x05 connection refused');
    const line = (await serve.waitFor(/^kubesocks: .*socks5 .*$/m, { stream: 'stderr', from, timeoutMs: 10_000 }))[0];
    assert.match(line, new RegExp(`socks5 \\[::1\\]:${target} failed \\[DIRECT_FAILED\\]: direct connection to \\[::1\\]:${target} failed: ECONNREFUSED$`));
    assert.doesNotMatch(line, new RegExp(`(?<!\\[)::1:${target}`), 'an unbracketed ::1:PORT');
  });

  test('HTTP CONNECT [::1]:PORT refused: the 502 body brackets the address', async () => {
    const target = await refusingPort();
    const answer = (await exchange(port, `CONNECT [::1]:${target} HTTP/1.1\r\nHost: [::1]:${target}\r\n\r\n`)).toString('latin1');
    assert.match(answer, /^HTTP\/1\.1 502 /);
    const body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
    assert.match(body, new RegExp(`direct connection to \\[::1\\]:${target} failed: ECONNREFUSED`));
    assert.doesNotMatch(body, new RegExp(`(?<!\\[)::1:${target}`));
  });

  test('forward on ::1: "Forwarding from [::1]:PORT", and a port taken on ::1 is "unable to listen on [::1]:PORT"', async () => {
    // Taken on ::1 only: the forward binds 127.0.0.1 and reports ::1.
    const blocker = createServer();
    await new Promise<void>((resolve, reject) => blocker.once('error', reject).listen({ port: 0, host: '::1', ipv6Only: true }, resolve));
    const taken = (blocker.address() as AddressInfo).port;
    const forward = new Proc(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'forward', '--kubeconfig', t.kubeconfig, '-n', 'demo', '--address', '127.0.0.1,::1', 'svc/web', `${taken}:80`], {
      cwd: REPO_ROOT,
      env: cleanEnv(),
    });
    const free = new Proc(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'forward', '--kubeconfig', t.kubeconfig, '-n', 'demo', '--address', '::1', 'svc/web', ':80'], {
      cwd: REPO_ROOT,
      env: cleanEnv(),
    });
    try {
      await forward.waitFor(/Forwarding from 127\.0\.0\.1:\d+ -> 8080/, { stream: 'stdout', timeoutMs: 30_000 });
      const refused = await forward.waitFor(/^.*unable to listen on .*$/m, { stream: 'stderr', timeoutMs: 10_000 });
      assert.match(refused[0], new RegExp(`unable to listen on \\[::1\\]:${taken}: `), forward.output);
      const forwarding = await free.waitFor(/^Forwarding from (.*) -> 8080$/m, { stream: 'stdout', timeoutMs: 30_000 });
      assert.match(forwarding[1] ?? '', /^\[::1\]:\d+$/, free.output);
    } finally {
      for (const p of [forward, free]) p.signal('SIGTERM');
      await Promise.all([forward.settle(10_000), free.settle(10_000)]);
      blocker.close();
    }
  });
});
