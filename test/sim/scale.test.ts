/**
 * The simulated cluster at scale: 10,000 services over 10,000 pods start in
 * seconds (derived objects are reconciled through indexes, not by scanning
 * the store per service), the derived EndpointSlices and Endpoints are right,
 * and one pod change costs little.
 */
import * as assert from 'node:assert/strict';
import { request } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { SimCluster } from '../../src/sim/cluster.js';
import type { Scenario } from '../../src/sim/types.js';

/** Parsed API JSON. */
type Json = any;

function get(c: SimCluster, path: string): Promise<Json> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, c.url), { ca: c.caPem, agent: false, headers: { Authorization: `Bearer ${c.adminToken}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
    });
    req.on('error', reject);
    req.end();
  });
}

const PODS = 10_000;
const SERVICES = 10_000;

/**
 * Namespace `big` holds half of everything (the case a per-namespace scan
 * hurts most), the rest is spread over 10 namespaces. Service `s-i` selects
 * `app=a-(i mod 5000)`, `tier=t` — two pods each.
 */
function scenario(): Scenario {
  const ns = (i: number) => (i % 2 === 0 ? 'big' : `ns-${i % 10}`);
  return {
    pods: Array.from({ length: PODS }, (_, i) => ({
      name: `p-${i}`,
      namespace: ns(i % 5000),
      labels: { app: `a-${i % 5000}`, tier: 't' },
      ip: `10.${100 + Math.floor(i / 65_536)}.${Math.floor(i / 256) % 256}.${i % 256}`,
      ready: i % 7 !== 0,
      ports: [{ name: 'http', containerPort: 8080 }],
    })),
    services: Array.from({ length: SERVICES }, (_, i) => ({
      name: `s-${i}`,
      namespace: ns(i % 5000),
      selector: { app: `a-${i % 5000}`, tier: 't' },
      ports: [{ name: 'web', port: 80, targetPort: 'http' }],
    })),
  };
}

describe('10,000 services over 10,000 pods', () => {
  let c: SimCluster;
  let startMs = 0;

  before(async () => {
    const input = scenario();
    const started = Date.now();
    c = await SimCluster.start({ scenario: input });
    startMs = Date.now() - started;
  });
  after(() => c.close());

  test('start() finishes in seconds (well under 2 s on an idle machine)', (t) => {
    t.diagnostic(`start() took ${startMs} ms`);
    // Generous for loaded CI machines; it took tens of seconds when every
    // service listed and sorted the whole store.
    assert.ok(startMs < 10_000, `start took ${startMs} ms`);
  });

  test('slices and Endpoints are right for a sample of services', async () => {
    for (const i of [0, 1, 7, 2500, 4999, 5000, 7777, 9999]) {
      const app = i % 5000;
      const ns = app % 2 === 0 ? 'big' : `ns-${app % 10}`;
      // Endpoints come sorted by pod name (as strings: p-5007 before p-7).
      const expected = [app, app + 5000].map((p) => `p-${p}`).sort();
      const ready = (p: number) => p % 7 !== 0;

      const slices = await get(c, `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=s-${i}`)}`);
      assert.equal(slices.items.length, 1, `s-${i}`);
      const [slice] = slices.items;
      assert.deepEqual(slice.ports, [{ name: 'web', protocol: 'TCP', port: 8080 }]);
      assert.deepEqual(
        slice.endpoints.map((e: Json) => [e.targetRef.name, e.conditions.ready]),
        expected.map((name) => [name, ready(Number(name.slice(2)))]),
      );

      const endpoints = await get(c, `/api/v1/namespaces/${ns}/endpoints/s-${i}`);
      const subset = endpoints.subsets[0];
      const listed = [...(subset.addresses ?? []), ...(subset.notReadyAddresses ?? [])].map((a: Json) => a.targetRef.name).sort();
      assert.deepEqual(listed, expected, `s-${i}`);
      assert.deepEqual(
        (subset.notReadyAddresses ?? []).map((a: Json) => a.targetRef.name),
        expected.filter((name) => !ready(Number(name.slice(2)))),
      );
    }
    const big = await get(c, '/apis/discovery.k8s.io/v1/namespaces/big/endpointslices');
    assert.equal(big.items.length, SERVICES / 2);
  });

  test('a pod change reconciles only what selects it, quickly', async () => {
    // Any list carries the store's latest resourceVersion; an empty one is cheap.
    const before = (await get(c, '/api/v1/namespaces/nowhere/pods')).metadata.resourceVersion;
    const started = Date.now();
    c.setPodReady('big', 'p-2', false);
    c.setPodReady('big', 'p-2', true);
    c.deletePod('big', 'p-5002');
    assert.ok(Date.now() - started < 1000, `three pod changes took ${Date.now() - started} ms`);
    const after = (await get(c, '/api/v1/namespaces/nowhere/pods')).metadata.resourceVersion;
    // Pod writes, plus a slice and an Endpoints update per change for s-2 and s-5002 each.
    assert.ok(Number(after) - Number(before) <= 3 + 3 * 4, `${Number(after) - Number(before)} writes`);
    const slice = (await get(c, `/apis/discovery.k8s.io/v1/namespaces/big/endpointslices?labelSelector=${encodeURIComponent('kubernetes.io/service-name=s-5002')}`)).items[0];
    assert.deepEqual(slice.endpoints.map((e: Json) => e.targetRef.name), ['p-2']);
  });
});
