/**
 * The tunnel against the simulated cluster over real TLS: upgrades, pooled
 * SPDY connections, stream pairs, and what happens when things fail.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { KubesocksError } from '../../src/errors.js';
import { KubeClient } from '../../src/kube/client.js';
import { TunnelPool } from '../../src/tunnel/pool.js';
import { podsBehindService, startTestCluster, type TestCluster } from '../helpers/sim.js';
import { exchangeToEnd } from '../helpers/streams.js';
import { TEST_TRANSPORT } from '../helpers/transport.js';

/**
 * Writes `payload` and resolves once as many bytes came back; only then ends.
 * (The runtime gives the other direction only 1 s after a FIN, so ending at
 * once makes an echo under heavy load a race against that grace period.)
 */
function echoRoundTrip(stream: Duplex, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received >= payload.length) {
        stream.end();
        resolve(Buffer.concat(chunks));
      }
    });
    stream.once('error', reject);
    stream.write(payload);
  });
}

function expectCode(code: string, text?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof KubesocksError, `expected a KubesocksError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (text) assert.match(error.message, text);
    return true;
  };
}

describe('tunnel against the simulated cluster', () => {
  let t: TestCluster;
  let client: KubeClient;
  let pool: TunnelPool;

  before(async () => {
    t = await startTestCluster();
    client = await KubeClient.load({ kubeconfig: t.kubeconfig });
    pool = new TunnelPool(client, { transport: TEST_TRANSPORT });
  });
  after(async () => {
    pool.close();
    client.close();
    await t.close();
  });

  test('a pair carries bytes both ways to the pod (echo), uploads past 64 KiB included', async () => {
    const payload = randomBytes(1024 * 1024 + 17);
    const pair = await pool.open('demo', 'echo-0', 7);
    const echoed = await exchangeToEnd(pair, payload);
    assert.equal(createHash('sha256').update(echoed).digest('hex'), createHash('sha256').update(payload).digest('hex'));
  });

  test('a refused pod port fails only its own pair, with the kubelet text', async () => {
    const before = t.cluster.counters().upgrades;
    const good = await pool.open('demo', 'web-0', 8080);
    const refused = await pool.open('demo', 'web-0', 9090);
    refused.on('error', () => {});
    await assert.rejects(refused.confirmed(), expectCode('POD_REFUSED', /error forwarding port 9090 to pod web-0, uid .*connection refused/));
    const reply = await exchangeToEnd(good, Buffer.from('GET /after-refusal HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    assert.match(reply.toString(), /pod web-0 path \/after-refusal/);
    const third = await pool.open('demo', 'web-0', 8080);
    assert.match((await exchangeToEnd(third, Buffer.from('GET /third HTTP/1.0\r\n\r\n'))).toString(), /path \/third/);
    assert.ok(t.cluster.counters().upgrades - before <= 1, 'one connection served all three pairs');
  });

  test('a pod that does not exist, and a user without pods/portforward, get the Status message', async () => {
    await assert.rejects(pool.open('demo', 'no-such-pod', 80), expectCode('POD_GONE', /pods "no-such-pod" not found/));
    const viewer = await KubeClient.load({ kubeconfig: await t.kubeconfigFor('viewer') });
    const viewerPool = new TunnelPool(viewer, { transport: TEST_TRANSPORT });
    try {
      await assert.rejects(
        viewerPool.open('demo', 'web-0', 8080),
        expectCode('FORBIDDEN', /pods "web-0" is forbidden: User "viewer" cannot (?:get|create) resource "pods\/portforward" in API group "" in the namespace "demo"/),
      );
    } finally {
      viewerPool.close();
      viewer.close();
    }
  });

  test('an expired token is refreshed once from its token file', async () => {
    const tokenFile = join(t.dir, 'token');
    await writeFile(tokenFile, t.cluster.adminToken);
    const yaml = t.cluster.kubeconfigYaml().replace(/token: .*/, `tokenFile: ${tokenFile}`);
    const file = join(t.dir, 'kubeconfig-tokenfile');
    await writeFile(file, yaml);
    const fileClient = await KubeClient.load({ kubeconfig: file });
    const filePool = new TunnelPool(fileClient, { transport: TEST_TRANSPORT });
    try {
      (await filePool.open('demo', 'echo-1', 7)).destroy();
      filePool.close();
      // Rotate: the old token stops working, the file holds a new one.
      t.cluster.addUser({ name: 'rotated', token: 'rotated-token-0123456789' });
      await writeFile(tokenFile, 'rotated-token-0123456789');
      const again = new TunnelPool(fileClient, { transport: TEST_TRANSPORT });
      try {
        const pair = await again.open('demo', 'echo-1', 7);
        assert.equal((await exchangeToEnd(pair, Buffer.from('still works'))).toString(), 'still works');
      } finally {
        again.close();
      }
    } finally {
      fileClient.close();
    }
  });
});

describe('a slow reader', () => {
  test('holds back only its own connection: a new pair to the same pod goes on a fresh one', async () => {
    const t = await startTestCluster();
    const client = await KubeClient.load({ kubeconfig: t.kubeconfig });
    const pool = new TunnelPool(client, { transport: TEST_TRANSPORT });
    try {
      t.cluster.addPod({
        name: 'mixed-0',
        namespace: 'demo',
        ip: '10.244.7.1',
        phase: 'Running',
        ready: true,
        ports: [
          { name: 'bytes', containerPort: 9000, backend: 'source' },
          { name: 'echo', containerPort: 7, backend: 'echo' },
        ],
      });
      const slow = await pool.open('demo', 'mixed-0', 9000);
      slow.on('error', () => {});
      slow.write(`${256 * 1024 * 1024}\n`); // and never read: the connection's socket gets paused
      await new Promise((resolve) => setTimeout(resolve, 500));
      const started = Date.now();
      const echo = await pool.open('demo', 'mixed-0', 7);
      assert.equal((await echoRoundTrip(echo, Buffer.from('not stuck'))).toString(), 'not stuck');
      assert.ok(Date.now() - started < 1000, `echo took ${Date.now() - started} ms`);
      assert.equal(pool.stats().connections, 2, 'the echo went on a second connection');
      slow.destroy();
    } finally {
      pool.close();
      client.close();
      await t.close();
    }
  });
});

describe('idle connections', () => {
  test("a burst's extra connections close after the short surplus timeout; the pod keeps one for reuse", async () => {
    const t = await startTestCluster(podsBehindService('burst', 'echo', 1, 7, 'echo'));
    const client = await KubeClient.load({ kubeconfig: t.kubeconfig });
    // Two pairs per connection: six open pairs need three connections.
    const pool = new TunnelPool(client, { transport: TEST_TRANSPORT, maxPairsPerConnection: 2, surplusIdleTimeoutMs: 200, idleTimeoutMs: 60_000 });
    try {
      const pairs = await Promise.all(Array.from({ length: 6 }, () => pool.open('burst', 'echo-0', 7)));
      assert.equal(pool.stats().connections, 3);
      for (const pair of pairs) await echoRoundTrip(pair, Buffer.from('x'));
      await Promise.all(pairs.map((pair) => new Promise((resolve) => pair.once('close', resolve))));
      const deadline = Date.now() + 5_000;
      while (pool.stats().connections > 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(pool.stats().connections, 1, 'the extra connections closed');
      await new Promise((resolve) => setTimeout(resolve, 600));
      assert.equal(pool.stats().connections, 1, 'the last one stays for the long idle timeout');
      assert.equal(t.cluster.counters().openConnections, 1, 'and the simulator agrees');
      const again = await pool.open('burst', 'echo-0', 7);
      assert.equal((await echoRoundTrip(again, Buffer.from('reused'))).toString(), 'reused');
      assert.equal(pool.stats().upgrades, 3, 'the kept connection was reused, no new upgrade');
      again.destroy();
    } finally {
      pool.close();
      client.close();
      await t.close();
    }
  });
});

describe('pooling and failures under load', () => {
  let t: TestCluster;
  let client: KubeClient;

  before(async () => {
    t = await startTestCluster(podsBehindService('load', 'echo', 10, 7, 'echo'));
    client = await KubeClient.load({ kubeconfig: t.kubeconfig });
  });
  after(async () => {
    client.close();
    await t.close();
  });

  test('500 concurrent sockets across 10 pods use exactly one upgrade per pod', async () => {
    const pool = new TunnelPool(client, { transport: TEST_TRANSPORT });
    t.cluster.resetCounters();
    try {
      const results = await Promise.all(
        Array.from({ length: 500 }, async (_, i) => {
          const pair = await pool.open('load', `echo-${i % 10}`, 7);
          const payload = Buffer.from(`socket ${i} `.repeat(50));
          const echoed = await echoRoundTrip(pair, payload);
          return echoed.equals(payload);
        }),
      );
      assert.equal(results.filter(Boolean).length, 500);
      assert.equal(t.cluster.counters().upgrades, 10);
      assert.equal(pool.stats().upgrades, 10);
    } finally {
      pool.close();
    }
  });

  test('deleting a pod mid-transfer destroys only its sockets; others continue', async () => {
    const pool = new TunnelPool(client, { transport: TEST_TRANSPORT });
    try {
      const doomed = await pool.open('load', 'echo-3', 7);
      const survivor = await pool.open('load', 'echo-4', 7);
      doomed.write('x'.repeat(1000));
      const doomedError = new Promise<unknown>((resolve) => doomed.once('error', resolve));
      t.cluster.deletePod('load', 'echo-3');
      const error = await doomedError;
      // The runtime's text about the copy that broke, or the connection's end: either names the pod.
      assert.ok(error instanceof KubesocksError && ['CONNECTION_LOST', 'PORTFORWARD_FAILED'].includes(error.code), String(error));
      assert.match(error.message, /^load\/echo-3 port 7: /);
      assert.equal((await exchangeToEnd(survivor, Buffer.from('alive'))).toString(), 'alive');
      await assert.rejects(pool.open('load', 'echo-3', 7), expectCode('POD_GONE'));
      const fresh = await pool.open('load', 'echo-5', 7);
      assert.equal((await exchangeToEnd(fresh, Buffer.from('fresh'))).toString(), 'fresh');
    } finally {
      pool.close();
    }
  });

  test('the API server going away and coming back at the same address is survived', async () => {
    const pool = new TunnelPool(client, { transport: TEST_TRANSPORT });
    try {
      const pair = await pool.open('load', 'echo-6', 7);
      const lost = new Promise<unknown>((resolve) => pair.once('error', resolve));
      await t.cluster.restartApiServer();
      assert.equal((await lost as KubesocksError).code, 'CONNECTION_LOST');
      const again = await pool.open('load', 'echo-6', 7);
      assert.equal((await exchangeToEnd(again, Buffer.from('back'))).toString(), 'back');
    } finally {
      pool.close();
    }
  });
});

describe('error stream messages', () => {
  test('plain text and the JSON form are both understood and classified', async () => {
    const { errorStreamMessage, classifyKubeletError } = await import('../../src/tunnel/pair.js');
    const text = 'error forwarding port 9090 to pod web-0, uid x: failed to connect to localhost:9090 inside namespace "n": connection refused';
    assert.equal(errorStreamMessage(text), text);
    assert.equal(errorStreamMessage(JSON.stringify({ closeConnection: false, message: text })), text);
    assert.equal(classifyKubeletError(text), 'POD_REFUSED');
    assert.equal(classifyKubeletError('error forwarding port 80 to pod p, uid u: network namespace for sandbox "abc" is closed'), 'POD_GONE');
    assert.equal(classifyKubeletError('(conn=&{0xc0}, request=3) timed out waiting for streams'), 'TIMEOUT');
    assert.equal(classifyKubeletError('something else entirely'), 'PORTFORWARD_FAILED');
  });
});
