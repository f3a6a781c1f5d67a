/**
 * Out of file descriptors: a real `kubesocks serve` (a child process under
 * `ulimit -n 64`, against the simulated cluster in this process) and a local
 * program that opens connections until the proxy takes no more. What must
 * hold: the log says so in ONE line per interval with what to do (`ulimit -n`),
 * not one line per closed socket; the connections already open keep working
 * (the process kept descriptors for its own connections to the cluster); once
 * sockets are freed new clients are served again; the process never crashes.
 *
 * Before the descriptor budget (src/proxy/descriptor-budget.ts) libuv's
 * "EMFILE trick" closed every connection past the limit and nothing was
 * logged at all: Node reports accept()'s EMFILE only when that trick fails.
 */
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { DescriptorBudget } from '../../src/proxy/descriptor-budget.js';
import { demoScenario } from '../../src/sim/scenario.js';
import { Proc, REPO_ROOT, cleanEnv, curl } from '../helpers/e2e-procs.js';
import { startTestCluster, type TestCluster } from '../helpers/sim.js';
import { TEST_TRANSPORT_ARGS } from '../helpers/transport.js';

const LIMIT = 64;
/** Descriptors kept free under that limit (an eighth, at least 16). */
const RESERVE = 16;
/** Far more connections than fit: every one past the budget is closed at once. */
const ATTEMPTS = 150;
const DROP_LINE = /^kubesocks: closing new connections at once: (\d+) of this process's 64 file descriptors \(ulimit -n\) are in use and 16 are kept for its own connections to the cluster\. Raise the limit before starting kubesocks \(ulimit -n 65536\), or close idle clients/g;

let t: TestCluster;
let serve: Proc;
let port: number;

before(async () => {
  t = await startTestCluster(demoScenario());
  const command = [process.execPath, '--import', 'tsx', 'src/cli.ts', 'serve', '--kubeconfig', t.kubeconfig, '--listen', '127.0.0.1:0', ...TEST_TRANSPORT_ARGS];
  serve = new Proc('bash', ['-c', `ulimit -n ${LIMIT} && exec "$@"`, 'bash', ...command], { cwd: REPO_ROOT, env: cleanEnv() });
  port = Number((await serve.waitFor(/listening on 127\.0\.0\.1:(\d+)/, { stream: 'stderr', timeoutMs: 30_000 }))[1]);
});

after(async () => {
  serve?.signal('SIGTERM');
  const exit = await serve?.settle(8000);
  await t?.close();
  assert.equal(exit?.code, 0, serve?.output);
});

/** A CONNECT tunnel to the echo service: resolves with the socket once the proxy answered 200, or null when it closed the socket instead. */
async function openTunnel(): Promise<Socket | null> {
  const socket = connect({ port, host: '127.0.0.1' });
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write('CONNECT echo.demo:7 HTTP/1.1\r\nHost: echo.demo:7\r\n\r\n');
  return new Promise((resolve, reject) => {
    let head = '';
    const timer = setTimeout(() => reject(new Error(`no answer to CONNECT within 10 s: ${JSON.stringify(head)}`)), 10_000);
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (!head.startsWith('HTTP/1.1 200')) reject(new Error(`CONNECT answered ${JSON.stringify(head)}`));
      else resolve(socket);
    };
    const onClose = (): void => {
      clearTimeout(timer);
      resolve(null);
    };
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}

async function echoes(socket: Socket, text: string): Promise<boolean> {
  socket.write(text);
  let got = '';
  const deadline = Date.now() + 5000;
  const onData = (chunk: Buffer): void => void (got += chunk.toString());
  socket.on('data', onData);
  while (got.length < text.length && Date.now() < deadline && !socket.destroyed) await new Promise((resolve) => setTimeout(resolve, 20));
  socket.off('data', onData);
  return got === text;
}

async function webThroughProxy(): Promise<string> {
  const r = await curl(['-x', `http://127.0.0.1:${port}`, 'http://web.demo/after'], { maxTime: 10 });
  return r.stdout;
}

test(`under ulimit -n ${LIMIT}: connections that would take the last ${RESERVE} descriptors are closed at once, told in one line per interval; the open ones keep working; freed room serves again`, async () => {
  assert.equal(new DescriptorBudget(LIMIT).reserve, RESERVE);
  const pid = serve.pid!;
  assert.match(await webThroughProxy(), /^pod web-[0-2] path \/after\n$/, serve.output);
  const logFrom = serve.stderr.length;

  const open: Socket[] = [];
  let closed = 0;
  const started = Date.now();
  for (let i = 0; i < ATTEMPTS; i++) {
    const socket = await openTunnel();
    if (socket) open.push(socket);
    else closed++;
  }
  const floodSeconds = (Date.now() - started) / 1000;
  const inUse = readdirSync(`/proc/${pid}/fd`).length;
  assert.ok(open.length >= 8, `only ${open.length} tunnels were served\n${serve.output}`);
  assert.equal(closed, ATTEMPTS - open.length);
  assert.ok(inUse <= LIMIT - RESERVE, `${inUse} descriptors in use: the reserve was taken`);

  // The tunnels already open still carry data: the process still opens what it needs to reach the cluster.
  for (const socket of [open[0]!, open.at(-1)!]) assert.ok(await echoes(socket, 'still here\n'), 'an open tunnel still echoes');

  // The first closed connection is told at once, the rest of its interval in one summary line at the interval's end.
  await serve.waitFor(/\((\d+) more closed in the last 10 s\)/, { stream: 'stderr', from: logFrom, timeoutMs: 15_000 });
  const lines = serve.stderr.slice(logFrom).trim().split('\n');
  console.log(`emfile: ulimit -n ${LIMIT}: ${open.length} tunnels open (${inUse} descriptors in use), ${closed} connections closed at once in ${floodSeconds.toFixed(1)} s; the log said:\n${lines.join('\n')}`);
  const told = lines.map((line) => {
    DROP_LINE.lastIndex = 0;
    const m = DROP_LINE.exec(line);
    assert.ok(m, `only the limit is logged, got: ${line}`);
    assert.ok(Number(m[1]) > LIMIT - RESERVE, line);
    return Number(/\((\d+) more closed in the last 10 s\)/.exec(line)?.[1] ?? 1);
  });
  assert.equal(told.reduce((a, b) => a + b, 0), closed, `every closed connection counted once:\n${lines.join('\n')}`);
  assert.ok(lines.length <= 2 * Math.ceil((floodSeconds + 0.001) / 10), `${lines.length} lines for ${closed} closed connections in ${floodSeconds} s`);

  // Room freed: new clients are served again.
  for (const socket of open.splice(0)) socket.destroy();
  let served = '';
  for (const deadline = Date.now() + 10_000; Date.now() < deadline && served === ''; ) {
    served = await webThroughProxy();
    if (served === '') await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.match(served, /^pod web-[0-2] path \/after\n$/, serve.output);
  assert.equal(serve.exit, undefined, 'kubesocks is still running');
});

test('the budget, in this process: sockets are admitted while the reserve stays free, closed after, admitted again once room is freed', async () => {
  const server = createServer({ pauseOnConnect: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const serverPort = (server.address() as { port: number }).port;
  const inUse = (): number => readdirSync('/proc/self/fd').length - 1;
  // Room for 10 more descriptors above a reserve of 16.
  const budget = new DescriptorBudget(inUse() + 10 + 16);
  assert.equal(budget.reserve, 16);
  const accepted: Socket[] = [];
  let verdicts: boolean[] = [];
  server.on('connection', (socket: Socket) => {
    const { admit } = budget.accepted();
    verdicts.push(admit);
    if (admit) accepted.push(socket);
    else socket.destroy();
  });
  const clients: Socket[] = [];
  const connectOne = async (): Promise<boolean> => {
    const before = verdicts.length;
    const client = connect({ port: serverPort, host: '127.0.0.1' });
    client.on('error', () => {});
    await once(client, 'connect');
    clients.push(client);
    for (const deadline = Date.now() + 5000; verdicts.length === before; ) {
      assert.ok(Date.now() < deadline, 'the server never saw the connection');
      await new Promise((resolve) => setImmediate(resolve));
    }
    return verdicts.at(-1)!;
  };
  try {
    // Each connection takes two descriptors here (both ends); the budget sees only the accepted end between counts.
    let most = 0;
    for (let i = 0; i < 12; i++) {
      await connectOne();
      most = Math.max(most, inUse());
    }
    assert.ok(verdicts.includes(false), `never closed one: ${verdicts.join()}`);
    assert.equal(verdicts.indexOf(false) > 0 && verdicts.slice(verdicts.indexOf(false)).every((v) => !v), true, `admitted, then closed: ${verdicts.join()}`);
    assert.ok(most <= budget.limit - budget.reserve / 2, `${most} descriptors in use: more than half the reserve taken`);

    // Room freed: after the recount interval the budget sees it.
    for (const socket of [...clients.splice(0), ...accepted.splice(0)]) socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 150));
    verdicts = [];
    assert.equal(await connectOne(), true, 'admitted again once descriptors were freed');
  } finally {
    for (const socket of [...clients, ...accepted]) socket.destroy();
    server.close();
  }
});
