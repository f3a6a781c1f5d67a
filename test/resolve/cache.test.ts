import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { KubeClient } from '../../src/kube/client.js';
import { NamespaceCache, NamespaceCaches } from '../../src/resolve/cache.js';
import { Resolver } from '../../src/resolve/resolver.js';
import type { Scenario } from '../../src/sim/types.js';
import { startTestCluster, type TestCluster } from '../helpers/sim.js';

async function setup(t: { after(fn: () => Promise<void> | void): void }, scenario?: Scenario): Promise<{ sim: TestCluster; client: KubeClient }> {
  const sim = await startTestCluster(scenario);
  const client = await KubeClient.load({ kubeconfig: sim.kubeconfig });
  t.after(async () => {
    client.close();
    await sim.close();
  });
  return { sim, client };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function readyPods(cache: NamespaceCache, service: string): string[] {
  return cache.slices
    .items()
    .filter((s) => s.service === service)
    .flatMap((s) => s.endpoints)
    .filter((e) => e.ready && !e.terminating)
    .map((e) => e.pod ?? '')
    .sort();
}

function counter(cache: NamespaceCache): { lists: number } {
  const c = { lists: 0 };
  for (const lw of [cache.services, cache.slices, cache.pods] as Array<NamespaceCache['pods']>) lw.on('synced', () => c.lists++);
  return c;
}

test('watch cut: re-watch from the last resourceVersion, nothing stale, no relist', async (t) => {
  const { sim, client } = await setup(t);
  const cache = new NamespaceCache('demo', client, { backoffMs: 20, maxBackoffMs: 100 });
  t.after(() => cache.stop());
  cache.start();
  assert.ok(await cache.service('web'));
  await cache.slicesFor('web');
  await cache.pod('web-0');
  const c = counter(cache);
  assert.deepEqual(readyPods(cache, 'web'), ['web-0', 'web-1', 'web-2']);
  // Cut, and change things before the client can reconnect.
  sim.cluster.cutWatches();
  sim.cluster.deletePod('demo', 'web-1');
  await until(() => readyPods(cache, 'web').join() === 'web-0,web-2' && cache.pods.get('web-1') === undefined);
  assert.equal(c.lists, 0, 'the event history covered the gap');
});

test('410 after compaction: relist, and what vanished meanwhile is gone', async (t) => {
  const { sim, client } = await setup(t);
  const cache = new NamespaceCache('demo', client, { backoffMs: 20, maxBackoffMs: 100 });
  t.after(() => cache.stop());
  cache.start();
  await cache.slicesFor('web');
  await cache.pod('web-0');
  await cache.service('web');
  // Move the global resourceVersion past what the demo watches have seen, then forget history.
  sim.cluster.addService({ name: 'elsewhere', namespace: 'other', selector: { app: 'x' }, ports: [{ port: 1 }] });
  const c = counter(cache);
  sim.cluster.compactHistory();
  sim.cluster.cutWatches();
  sim.cluster.deletePod('demo', 'web-2');
  await until(() => c.lists >= 3);
  await until(() => readyPods(cache, 'web').join() === 'web-0,web-1' && cache.pods.get('web-2') === undefined);
});

test('the API server restarting: watches come back and see later changes', async (t) => {
  const { sim, client } = await setup(t);
  const r = new Resolver(client, { backoffMs: 20, maxBackoffMs: 200, negativeTtlMs: 0 });
  t.after(() => r.close());
  const first = await r.resolve('web.demo', 80);
  assert.equal(first.kind === 'cluster' && first.candidates.length, 3);
  // Let every watch be established first: the simulator's restart waits for
  // connections still in their TLS handshake (reported to its owner).
  await r.resolve('lonely.demo', 8080);
  await new Promise((resolve) => setTimeout(resolve, 100));
  await sim.cluster.restartApiServer();
  sim.cluster.setPodReady('demo', 'web-3', true);
  const end = Date.now() + 5000;
  for (;;) {
    const res = await r.resolve('web.demo', 80);
    if (res.kind === 'cluster' && res.candidates.length === 4) break;
    if (Date.now() > end) assert.fail('web-3 never became a candidate after the restart');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
});

test('LRU of namespaces: an evicted namespace stops its watches', async (t) => {
  const { client } = await setup(t);
  const caches = new NamespaceCaches(client, { maxNamespaces: 2 });
  t.after(() => caches.close());
  const demo = caches.get('demo');
  await demo.service('web');
  const other = caches.get('other');
  await other.service('api');
  assert.equal(demo.services.active, true);
  caches.get('demo'); // demo is now the most recent; other is next to go
  const third = caches.get('default');
  await third.service('kubernetes');
  assert.equal(caches.size, 2);
  assert.equal(caches.has('other'), false);
  for (const lw of [other.services, other.slices, other.pods]) assert.equal(lw.active, false);
  for (const lw of [demo.services, demo.slices, demo.pods]) assert.equal(lw.active, true);
  // Coming back starts a fresh cache.
  const again = caches.get('other');
  assert.notEqual(again, other);
  assert.ok(await again.service('api'));
  caches.close();
  for (const lw of [demo.pods, again.pods, third.pods]) assert.equal(lw.active, false);
});

test('sync timeout: TIMEOUT, or the last error, when the first list does not come', async (t) => {
  const { sim, client } = await setup(t);
  await sim.cluster.close();
  const cache = new NamespaceCache('demo', client, { syncTimeoutMs: 300, backoffMs: 20, maxBackoffMs: 50 });
  t.after(() => cache.stop());
  cache.start();
  await assert.rejects(cache.service('web'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'API_UNREACHABLE');
    assert.match(err.message, /listing services in namespace "demo" failed: cannot reach the API server/);
    return true;
  });
});

test('memory stays bounded with 10,000 services in a namespace', async (t) => {
  const N = 10_000;
  const scenario: Scenario = {
    namespaces: ['big'],
    pods: [],
    services: Array.from({ length: N }, (_, i) => ({
      name: `svc-${i}`,
      namespace: 'big',
      selector: { app: `app-${i}` },
      ports: [
        { name: 'http', port: 80, targetPort: 'http' },
        { name: 'grpc', port: 9090, targetPort: 9090 },
      ],
    })),
  };
  let t0 = Date.now();
  const { sim, client } = await setup(t, scenario);
  t.diagnostic(`simulator with ${N} services started in ${Date.now() - t0} ms`);
  t0 = Date.now();
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const heap = (): number => {
    gc();
    gc();
    return process.memoryUsage().heapUsed;
  };

  // Warm the simulator up first (it keeps state of its own in this process), so
  // the deltas below are ours.
  await client.getJSON('/api/v1/namespaces/big/services');
  await client.getJSON('/apis/discovery.k8s.io/v1/namespaces/big/endpointslices');
  await client.getJSON('/api/v1/namespaces/big/pods');
  const before = heap();
  const cache = new NamespaceCache('big', client, { syncTimeoutMs: 60_000 });
  t.after(() => cache.stop());
  cache.start();
  assert.ok(await cache.service('svc-9999'));
  assert.equal((await cache.slicesFor('svc-5000')).length, 1);
  await cache.pod('none');
  t.diagnostic(`synced in ${Date.now() - t0} ms`);
  const delta = heap() - before;
  assert.equal(cache.services.size, N);
  assert.equal(cache.slices.size, N);
  // What a service costs, for the record (the objects a real API server
  // sends are several times larger than the simulator's: managedFields,
  // annotations; projections keep none of it).
  t.diagnostic(`${N} services + ${N} slices cached: ${(delta / 1e6).toFixed(1)} MB (${Math.round(delta / N)} bytes per service)`);
  assert.ok(delta < 40e6, `cache of ${N} services + slices used ${(delta / 1e6).toFixed(1)} MB`);

  // A relist (history compacted, watches cut) replaces the store instead of growing it.
  const lists = { n: 0 };
  cache.services.on('synced', () => lists.n++);
  sim.cluster.addService({ name: 'bump', namespace: 'default', ports: [{ port: 1 }] });
  sim.cluster.compactHistory();
  sim.cluster.cutWatches();
  t0 = Date.now();
  await until(() => lists.n >= 1, 30_000);
  t.diagnostic(`relisted in ${Date.now() - t0} ms`);
  const after = heap() - before;
  t.diagnostic(`after a relist: ${(after / 1e6).toFixed(1)} MB`);
  assert.ok(after < 40e6, `after a relist the cache used ${(after / 1e6).toFixed(1)} MB`);
});
