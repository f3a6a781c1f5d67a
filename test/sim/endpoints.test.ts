/**
 * v1 Endpoints derived per service: addresses, subsets, watches, and truncation past 1000 addresses.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SimCluster } from '../../src/sim/cluster.js';
import { type Json, call, Watch, names } from '../helpers/sim-api.js';

describe('v1 Endpoints', () => {
  let c: SimCluster;
  before(async () => {
    c = await SimCluster.start();
  });
  after(() => c.close());

  const addr = (a: Json) => [a.ip, a.targetRef?.name, a.hostname ?? null];

  test('derived per service: ready and not-ready addresses, target refs, resolved named ports', async () => {
    const web = (await call(c, '/api/v1/namespaces/demo/endpoints/web')).json;
    assert.equal(web.kind, 'Endpoints');
    assert.equal(web.apiVersion, 'v1');
    assert.equal(web.metadata.name, 'web');
    assert.match(web.metadata.uid, /^[0-9a-f-]{36}$/);
    assert.equal(web.metadata.labels, undefined);
    assert.equal(web.subsets.length, 1);
    const [subset] = web.subsets;
    assert.deepEqual(subset.addresses.map(addr), [
      ['10.244.0.10', 'web-0', null],
      ['10.244.0.11', 'web-1', null],
      ['10.244.0.12', 'web-2', null],
    ]);
    assert.deepEqual(subset.notReadyAddresses.map(addr), [['10.244.0.13', 'web-3', null]]);
    assert.deepEqual(subset.ports, [{ name: 'http', port: 8080, protocol: 'TCP' }], 'the named targetPort resolved');
    const pod = (await call(c, '/api/v1/namespaces/demo/pods/web-0')).json;
    assert.deepEqual(subset.addresses[0], {
      ip: '10.244.0.10',
      nodeName: 'sim-node-1',
      targetRef: { kind: 'Pod', namespace: 'demo', name: 'web-0', uid: pod.metadata.uid },
    });

    const db = (await call(c, '/api/v1/namespaces/demo/endpoints/db')).json;
    assert.deepEqual(db.metadata.labels, { 'service.kubernetes.io/headless': '' });
    assert.deepEqual(db.subsets[0].addresses.map(addr), [
      ['10.244.0.30', 'db-0', 'db-0'],
      ['10.244.0.31', 'db-1', 'db-1'],
    ]);
    assert.deepEqual(db.subsets[0].ports, [{ name: 'postgres', port: 5432, protocol: 'TCP' }]);

    const docs = await call(c, '/api/v1/namespaces/demo/endpoints/docs');
    assert.equal(docs.status, 404, 'an ExternalName service has none');
    assert.equal(docs.json.message, 'endpoints "docs" not found');

    const list = (await call(c, '/api/v1/namespaces/demo/endpoints')).json;
    assert.equal(list.kind, 'EndpointsList');
    assert.deepEqual(names(list), ['db', 'echo', 'web']);
    const all = (await call(c, '/api/v1/endpoints')).json;
    assert.deepEqual(all.items.map((e: Json) => `${e.metadata.namespace}/${e.metadata.name}`), ['demo/db', 'demo/echo', 'demo/web', 'other/api']);
  });

  test('a watch follows readiness, termination and deletion; a service selecting nothing has no subsets', async () => {
    const w = new Watch(c, `/api/v1/namespaces/demo/endpoints?watch=1&fieldSelector=${encodeURIComponent('metadata.name=echo')}`);
    const [initial] = await w.atLeast(1);
    assert.deepEqual(initial?.object.subsets[0].addresses.map(addr), [
      ['10.244.0.20', 'echo-0', null],
      ['10.244.0.21', 'echo-1', null],
    ]);
    c.setPodReady('demo', 'echo-1', false);
    const notReady = await w.find((e) => e.type === 'MODIFIED');
    assert.deepEqual(notReady.object.subsets[0].notReadyAddresses.map(addr), [['10.244.0.21', 'echo-1', null]]);
    assert.equal(notReady.object.metadata.uid, initial?.object.metadata.uid);

    // A terminating pod leaves Endpoints at once (it stays in the slice, terminating).
    c.setPodTerminating('demo', 'echo-0', true);
    const terminating = await w.find((e) => e.type === 'MODIFIED' && e.object.subsets[0].addresses === undefined);
    assert.equal(terminating.object.subsets.length, 1);
    c.setPodTerminating('demo', 'echo-0', false);
    c.setPodReady('demo', 'echo-1', true);

    c.addService({ name: 'nothing', namespace: 'demo', selector: { app: 'none' }, ports: [{ port: 80 }] });
    const nothing = (await call(c, '/api/v1/namespaces/demo/endpoints/nothing')).json;
    assert.equal(nothing.subsets, undefined);
    c.deleteService('demo', 'nothing');
    assert.equal((await call(c, '/api/v1/namespaces/demo/endpoints/nothing')).status, 404);

    c.deleteService('demo', 'echo');
    assert.equal((await w.find((e) => e.type === 'DELETED')).object.metadata.name, 'echo');
    w.close();
  });

  test('the user nowatch may get endpoints (not list them); Tables print IP:PORT', async () => {
    const token = c.tokenFor('nowatch');
    const got = await call(c, '/api/v1/namespaces/demo/endpoints/web', { token });
    assert.equal(got.status, 200);
    const list = await call(c, '/api/v1/namespaces/demo/endpoints', { token });
    assert.equal(list.json.message, 'endpoints is forbidden: User "nowatch" cannot list resource "endpoints" in API group "" in the namespace "demo"');

    const table = (await call(c, '/api/v1/namespaces/demo/endpoints/web', { headers: { Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' } })).json;
    assert.deepEqual(table.columnDefinitions.map((x: Json) => x.name), ['Name', 'Endpoints', 'Age']);
    assert.deepEqual(table.rows[0].cells.slice(0, 2), ['web', '10.244.0.10:8080,10.244.0.11:8080,10.244.0.12:8080']);
  });
});

describe('v1 Endpoints: ports that differ between pods, truncation past 1000 addresses', () => {
  let c: SimCluster;
  before(async () => {
    const many = Array.from({ length: 1005 }, (_, i) => ({
      name: `m-${i}`,
      namespace: 'big',
      labels: { app: 'many' },
      ip: `10.250.${Math.floor(i / 250)}.${i % 250}`,
      ready: i < 990,
      ports: [{ name: 'http', containerPort: 8080 }],
    }));
    c = await SimCluster.start({
      scenario: {
        pods: [
          { name: 'a', namespace: 'ns', labels: { app: 'x' }, ip: '10.1.0.1', ports: [{ name: 'http', containerPort: 8080 }, { name: 'admin', containerPort: 9000 }] },
          { name: 'b', namespace: 'ns', labels: { app: 'x' }, ip: '10.1.0.2', ports: [{ name: 'http', containerPort: 9090 }] },
          { name: 'c', namespace: 'ns', labels: { app: 'x' }, ip: '10.1.0.3', ports: [{ name: 'other', containerPort: 7000 }] },
          { name: 'd', namespace: 'ns', labels: { app: 'x' }, ip: '10.1.0.4', ports: [{ name: 'http', containerPort: 8080 }], phase: 'Succeeded' },
          { name: 'h', namespace: 'ns', labels: { app: 'x' }, ip: '10.1.0.8', ready: false, hostname: 'h', subdomain: 'x', ports: [{ name: 'http', containerPort: 8080 }] },
          ...many,
        ],
        services: [
          { name: 'x', namespace: 'ns', selector: { app: 'x' }, ports: [{ name: 'web', port: 80, targetPort: 'http' }, { name: 'admin', port: 9000, targetPort: 'admin' }] },
          { name: 'bare', namespace: 'ns', clusterIP: 'None', selector: { app: 'x' } },
          { name: 'many', namespace: 'big', selector: { app: 'many' }, ports: [{ port: 80, targetPort: 8080 }] },
        ],
      },
    });
  });
  after(() => c.close());

  test('addresses offering the same ports share a subset (endpoints.RepackSubsets)', async () => {
    const x = (await call(c, '/api/v1/namespaces/ns/endpoints/x')).json;
    const summary = x.subsets.map((s: Json) => ({
      ready: (s.addresses ?? []).map((a: Json) => a.targetRef.name),
      notReady: (s.notReadyAddresses ?? []).map((a: Json) => [a.targetRef.name, a.hostname]),
      ports: s.ports.map((p: Json) => `${p.name}:${p.port}`),
    }));
    assert.deepEqual(summary, [
      { ready: ['a'], notReady: [], ports: ['admin:9000'] },
      { ready: ['a'], notReady: [['h', 'h']], ports: ['web:8080'] },
      { ready: ['b'], notReady: [], ports: ['web:9090'] },
    ]);
    // A headless service without ports lists bare addresses (c, which lacks every named port of x, included).
    const bare = (await call(c, '/api/v1/namespaces/ns/endpoints/bare')).json;
    assert.equal(bare.subsets.length, 1);
    assert.equal(bare.subsets[0].ports, undefined);
    assert.deepEqual(bare.subsets[0].addresses.map((a: Json) => a.ip), ['10.1.0.1', '10.1.0.2', '10.1.0.3']);
    assert.deepEqual(bare.subsets[0].notReadyAddresses.map((a: Json) => a.ip), ['10.1.0.8']);
  });

  test('over 1000 addresses: truncated, ready ones kept first, and annotated', async () => {
    const many = (await call(c, '/api/v1/namespaces/big/endpoints/many')).json;
    assert.deepEqual(many.metadata.annotations, { 'endpoints.kubernetes.io/over-capacity': 'truncated' });
    assert.equal(many.subsets.length, 1);
    assert.equal(many.subsets[0].addresses.length, 990);
    assert.equal(many.subsets[0].notReadyAddresses.length, 10);
    // The slices are not capped: 1005 endpoints over 11 slices of at most 100.
    const slices = (await call(c, '/apis/discovery.k8s.io/v1/namespaces/big/endpointslices')).json;
    assert.equal(slices.items.length, 11);
    assert.equal(slices.items.reduce((n: number, s: Json) => n + s.endpoints.length, 0), 1005);
  });
});
