/**
 * The library API end to end against the simulated cluster: names in,
 * connected Duplex streams out, through TLS, the API server and SPDY.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { createDialer, Dialer } from '../../src/dialer/dialer.js';
import { KubesocksError } from '../../src/errors.js';
import { expectedSourceDigest } from '../../src/sim/backends.js';
import { demoScenario } from '../../src/sim/scenario.js';
import type { Scenario } from '../../src/sim/types.js';
import { startTestCluster, type TestCluster } from '../helpers/sim.js';
import { exchangeToEnd } from '../helpers/streams.js';
import { TEST_TRANSPORT } from '../helpers/transport.js';

function httpGet(dialer: Dialer, url: string, agent = dialer.agent()): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.once('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .once('error', reject);
  });
}

const code = (expected: string, text?: RegExp) => (error: unknown) => {
  assert.ok(error instanceof KubesocksError, String(error));
  assert.equal(error.code, expected, error.message);
  if (text) assert.match(error.message, text);
  return true;
};

function scenarioWithFlakyService(): Scenario {
  const scenario = demoScenario();
  for (const [name, backend] of [
    ['flaky-a', 'closed'],
    ['flaky-b', 'echo'],
  ] as const) {
    scenario.pods.push({
      name,
      namespace: 'demo',
      labels: { app: 'flaky' },
      ip: name === 'flaky-a' ? '10.244.9.1' : '10.244.9.2',
      phase: 'Running',
      ready: true,
      ports: [{ name: 'echo', containerPort: 7, backend }],
    });
  }
  scenario.services.push({ name: 'flaky', namespace: 'demo', selector: { app: 'flaky' }, ports: [{ name: 'echo', port: 7, targetPort: 'echo' }] });
  return scenario;
}

describe('dialer', () => {
  let t: TestCluster;
  let dialer: Dialer;

  before(async () => {
    t = await startTestCluster(scenarioWithFlakyService());
    dialer = await createDialer({ kubeconfig: t.kubeconfig, transport: TEST_TRANSPORT });
  });
  after(async () => {
    await dialer.close();
    await t.close();
  });

  test('connect by cluster DNS name, and by pod object', async () => {
    const socket = await dialer.connect('echo.demo.svc.cluster.local:7');
    assert.match(socket.via, /^demo\/echo-[01]:7$/);
    assert.equal((await exchangeToEnd(socket, 'ping')).toString(), 'ping');
    const direct = await dialer.connect({ namespace: 'demo', pod: 'web-0', port: 8080 });
    assert.match((await exchangeToEnd(direct, 'GET /direct HTTP/1.0\r\n\r\n')).toString(), /pod web-0 path \/direct/);
  });

  test('http.Agent through the dialer spreads requests over the ready web pods only', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const { status, body } = await httpGet(dialer, `http://web.demo/req-${i}`, dialer.agent({ keepAlive: false }));
      assert.equal(status, 200);
      const pod = /pod (\S+)/.exec(body)?.[1];
      assert.ok(pod, body);
      seen.add(pod);
    }
    assert.deepEqual([...seen].sort(), ['web-0', 'web-1', 'web-2']);
  });

  test('a refused pod port is reported truthfully, with the kubelet text', async () => {
    await assert.rejects(dialer.connect({ namespace: 'demo', pod: 'web-0', port: 9090 }), code('POD_REFUSED', /connection refused/));
    // and the next connection to that pod is unaffected
    const ok = await dialer.connect('web-0.demo:8080');
    assert.match((await exchangeToEnd(ok, 'GET / HTTP/1.0\r\n\r\n')).toString(), /pod web-0/);
  });

  test('a service whose pod refuses fails over to the other ready pod, every time', async () => {
    await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const socket = await dialer.connect('flaky.demo:7');
        assert.equal(socket.via, 'demo/flaky-b:7');
        assert.equal((await exchangeToEnd(socket, `round ${i}`)).toString(), `round ${i}`);
      }),
    );
  });

  test('names that do not resolve, and ports a service does not have, fail clearly', async () => {
    await assert.rejects(dialer.connect('nope.demo:80'), code('NOT_FOUND'));
    await assert.rejects(dialer.connect('web.demo:81'), code('NO_SUCH_PORT'));
    await assert.rejects(dialer.connect({ namespace: 'demo', pod: 'ghost', port: 80 }), code('NOT_FOUND', /ghost/));
  });

  test('a large download arrives intact (source backend, sha256)', async () => {
    const scenarioBytes = 64 * 1024 * 1024;
    t.cluster.addPod({
      name: 'source-0',
      namespace: 'demo',
      ip: '10.244.8.1',
      phase: 'Running',
      ready: true,
      ports: [{ name: 'bytes', containerPort: 9000, backend: 'source' }],
    });
    const socket = await dialer.connect({ namespace: 'demo', pod: 'source-0', port: 9000 });
    const hash = createHash('sha256');
    let received = 0;
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      hash.update(chunk);
    });
    socket.write(`${scenarioBytes}\n`);
    await new Promise((resolve, reject) => {
      socket.once('end', resolve);
      socket.once('error', reject);
    });
    socket.end();
    assert.equal(received, scenarioBytes);
    assert.equal(hash.digest('hex'), expectedSourceDigest(scenarioBytes));
  });

  test('a socket left half-open after the pod side ended is closed after the grace period', async () => {
    const socket = await dialer.connect({ namespace: 'demo', pod: 'source-0', port: 9000 });
    const started = Date.now();
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.write('10\n'); // the source sends 10 bytes and ends; we never end our side
    await new Promise((resolve) => socket.once('close', resolve));
    assert.equal(Buffer.concat(chunks).length, 10);
    const waited = Date.now() - started;
    assert.ok(waited >= 4000 && waited < 9000, `closed after ${waited} ms`);
    assert.equal(dialer.stats().pairs, 0);
  });
});

test('createDialer refuses unusable options with one exact TypeError, before reading any kubeconfig', async () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ direct: 'maybe' }, /^Expected the `direct` option to be "allow" or "deny", got "maybe"$/],
    [{ connectTimeoutMs: 0 }, /^Expected the `connectTimeoutMs` option to be a positive integer, got 0$/],
    [{ maxFailovers: -1 }, /^Expected the `maxFailovers` option to be a non-negative integer, got -1$/],
    [{ maxNamespaces: 1.5 }, /^Expected the `maxNamespaces` option to be a positive integer, got 1.5$/],
    [{ context: '' }, /^Expected the `context` option to be a non-empty string, got ""$/],
    [{ pool: { upgradeTimeoutMs: Number.NaN } }, /^Expected the `pool.upgradeTimeoutMs` option to be a positive integer, got NaN$/],
  ];
  for (const [options, message] of cases) {
    // A kubeconfig that does not exist: a CONFIG error would mean the options were not checked first.
    await assert.rejects(createDialer({ kubeconfig: '/nonexistent/kubeconfig', ...options }), (error: unknown) => {
      assert.ok(error instanceof TypeError, `${JSON.stringify(options)}: ${String(error)}`);
      assert.match(error.message, message);
      return true;
    });
  }
  // The same rules hold for a Dialer built from parts.
  assert.throws(() => new Dialer(undefined as never, { direct: 'maybe' as never }), /`direct` option/);
});
