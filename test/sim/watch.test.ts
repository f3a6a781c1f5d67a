/**
 * Mutations and watches: resourceVersions, selectors on watches, compaction (410 Expired), timeouts,
 * sendInitialEvents, and slices that follow pod readiness.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SimCluster } from '../../src/sim/cluster.js';
import { ScenarioError } from '../../src/sim/scenario.js';
import { type Json, call, type WatchEvent, Watch } from '../helpers/sim-api.js';

describe('mutations and watches', () => {
  let c: SimCluster;
  before(async () => {
    c = await SimCluster.start();
  });
  after(() => c.close());

  test('a watch from a list\'s resourceVersion sees later changes, in order', async () => {
    const list = (await call(c, '/api/v1/namespaces/demo/pods')).json;
    const rv = Number(list.metadata.resourceVersion);
    const w = new Watch(c, `/api/v1/namespaces/demo/pods?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true`);
    assert.equal(await w.opened(), 200);

    c.setPodReady('demo', 'web-3', true);
    c.addPod({ name: 'web-9', namespace: 'demo', labels: { app: 'web' }, ports: [{ name: 'http', containerPort: 8080 }] });
    c.deletePod('demo', 'web-9');
    const events = await w.atLeast(3);
    assert.deepEqual(
      events.map((e) => [e.type, e.object.metadata.name]),
      [
        ['MODIFIED', 'web-3'],
        ['ADDED', 'web-9'],
        ['DELETED', 'web-9'],
      ],
    );
    assert.equal(events[0]?.object.kind, 'Pod');
    const rvs = events.map((e) => Number(e.object.metadata.resourceVersion));
    assert.ok(rvs.every((v, i) => v > rv && (i === 0 || v > (rvs[i - 1] ?? 0))), `increasing: ${rvs}`);
    // An allocated pod IP for a pod without one in the scenario.
    assert.match(events[1]?.object.status.podIP, /^10\.244\.\d+\.\d+$/);
    w.close();
    c.setPodReady('demo', 'web-3', false);
  });

  test('resourceVersion 0 or absent: ADDED for the current state first', async () => {
    for (const rv of ['&resourceVersion=0', '']) {
      const w = new Watch(c, `/api/v1/namespaces/other/pods?watch=true${rv}`);
      const [first] = await w.atLeast(1);
      assert.equal(first?.type, 'ADDED');
      assert.equal(first?.object.metadata.name, 'api-0');
      w.close();
    }
  });

  test('selectors filter watches; leaving the selection is a DELETED', async () => {
    const w = new Watch(c, `/api/v1/namespaces/demo/pods?watch=1&labelSelector=${encodeURIComponent('app=echo')}`);
    await w.atLeast(2);
    c.replacePod({ name: 'echo-1', namespace: 'demo', labels: { app: 'echo-old' }, ip: '10.244.0.21', ports: [{ name: 'echo', containerPort: 7, backend: 'echo' }] });
    c.setPodReady('demo', 'web-0', false);
    c.replacePod({ name: 'echo-1', namespace: 'demo', labels: { app: 'echo' }, ip: '10.244.0.21', ports: [{ name: 'echo', containerPort: 7, backend: 'echo' }] });
    const events = await w.atLeast(4);
    assert.deepEqual(
      events.slice(2).map((e) => [e.type, e.object.metadata.name]),
      [
        ['DELETED', 'echo-1'],
        ['ADDED', 'echo-1'],
      ],
    );
    c.setPodReady('demo', 'web-0', true);
    const named = new Watch(c, `/api/v1/namespaces/demo/pods?watch=1&fieldSelector=${encodeURIComponent('metadata.name=web-2')}`);
    await named.atLeast(1);
    c.setPodReady('demo', 'web-1', false);
    c.setPodReady('demo', 'web-2', false);
    const [, modified] = await named.atLeast(2);
    assert.deepEqual([modified?.type, modified?.object.metadata.name], ['MODIFIED', 'web-2']);
    c.setPodReady('demo', 'web-1', true);
    c.setPodReady('demo', 'web-2', true);
    w.close();
    named.close();
  });

  test('an update that changes nothing is no event', async () => {
    const before = (await call(c, '/api/v1/namespaces/demo/pods/web-0')).json.metadata.resourceVersion;
    c.setPodReady('demo', 'web-0', true);
    const afterRv = (await call(c, '/api/v1/namespaces/demo/pods/web-0')).json.metadata.resourceVersion;
    assert.equal(afterRv, before);
  });

  test('slices follow readiness, termination and deletion, with MODIFIED events', async () => {
    const w = new Watch(c, `/apis/discovery.k8s.io/v1/namespaces/demo/endpointslices?watch=1&labelSelector=${encodeURIComponent('kubernetes.io/service-name=web')}`);
    const [initial] = await w.atLeast(1);
    const conditions = (e: WatchEvent | undefined, pod: string) => e?.object.endpoints?.find((x: Json) => x.targetRef.name === pod)?.conditions;
    assert.deepEqual(conditions(initial, 'web-1'), { ready: true, serving: true, terminating: false });

    c.setPodTerminating('demo', 'web-1', true);
    const [, terminating] = await w.atLeast(2);
    assert.equal(terminating?.type, 'MODIFIED');
    assert.equal(terminating?.object.metadata.name, initial?.object.metadata.name, 'the slice keeps its name');
    assert.deepEqual(conditions(terminating, 'web-1'), { ready: false, serving: true, terminating: true });
    const pod = (await call(c, '/api/v1/namespaces/demo/pods/web-1')).json;
    assert.match(pod.metadata.deletionTimestamp, /Z$/);

    c.setPodReady('demo', 'web-1', false);
    const [, , notServing] = await w.atLeast(3);
    assert.deepEqual(conditions(notServing, 'web-1'), { ready: false, serving: false, terminating: true });

    c.deletePod('demo', 'web-1');
    const [, , , gone] = await w.atLeast(4);
    assert.equal(gone?.object.endpoints.some((x: Json) => x.targetRef.name === 'web-1'), false);

    c.deleteService('demo', 'web');
    const deleted = await w.find((e) => e.type === 'DELETED');
    assert.equal(deleted.object.metadata.name, initial?.object.metadata.name);
    w.close();
  });

  test('services added at run time get a cluster IP and slices; removing the selector removes them', async () => {
    const w = new Watch(c, '/apis/discovery.k8s.io/v1/namespaces/fresh/endpointslices?watch=1');
    await w.opened();
    c.addService({ name: 'late', namespace: 'fresh', selector: { app: 'late' }, ports: [{ port: 81, targetPort: 8081 }] });
    const svc = (await call(c, '/api/v1/namespaces/fresh/services/late')).json;
    assert.match(svc.spec.clusterIP, /^10\.96\.\d+\.\d+$/);
    assert.deepEqual(svc.spec.ports, [{ protocol: 'TCP', port: 81, targetPort: 8081 }]);
    // The namespace appeared with the service.
    assert.equal((await call(c, '/api/v1/namespaces/fresh')).status, 200);
    const placeholder = await w.find((e) => e.type === 'ADDED');
    assert.equal(placeholder.object.endpoints, null, 'a service selecting no pods keeps an empty placeholder slice');
    assert.equal(placeholder.object.ports, null);

    c.addPod({ name: 'late-0', namespace: 'fresh', labels: { app: 'late' }, ip: '10.244.9.9' });
    const filled = await w.find((e) => e.type === 'MODIFIED');
    assert.deepEqual(filled.object.ports, [{ name: '', protocol: 'TCP', port: 8081 }]);
    assert.deepEqual(filled.object.endpoints[0].addresses, ['10.244.9.9']);

    c.addService({ name: 'late', namespace: 'fresh', ports: [{ port: 81, targetPort: 8081 }] });
    await w.find((e) => e.type === 'DELETED');
    const again = (await call(c, '/api/v1/namespaces/fresh/services/late')).json;
    assert.equal(again.spec.clusterIP, svc.spec.clusterIP, 'a replaced service keeps its cluster IP');
    assert.equal(again.metadata.uid, svc.metadata.uid);
    w.close();
  });

  test('namespace and service watches see their changes', async () => {
    const ns = new Watch(c, `/api/v1/namespaces?watch=1&resourceVersion=${(await call(c, '/api/v1/namespaces')).json.metadata.resourceVersion}`);
    const svc = new Watch(c, `/api/v1/services?watch=1&resourceVersion=${(await call(c, '/api/v1/services')).json.metadata.resourceVersion}`);
    await Promise.all([ns.opened(), svc.opened()]);
    c.addService({ name: 'x', namespace: 'brand-new', clusterIP: 'None', selector: { a: 'b' } });
    assert.equal((await ns.find((e) => e.type === 'ADDED')).object.metadata.name, 'brand-new');
    assert.equal((await svc.find((e) => e.type === 'ADDED')).object.metadata.name, 'x');
    c.deleteService('brand-new', 'x');
    assert.equal((await svc.find((e) => e.type === 'DELETED')).object.metadata.name, 'x');
    ns.close();
    svc.close();
  });

  test('mutations of missing objects throw NotFound / AlreadyExists Status errors', () => {
    assert.throws(() => c.deletePod('demo', 'nope'), { message: 'pods "nope" not found' });
    assert.throws(() => c.setPodReady('demo', 'nope', true), { message: 'pods "nope" not found' });
    assert.throws(() => c.deleteService('demo', 'nope'), { message: 'services "nope" not found' });
    assert.throws(() => c.addPod({ name: 'lonely', namespace: 'demo' }), { message: 'pods "lonely" already exists' });
    assert.throws(() => c.addPod({ name: 'Bad_Name', namespace: 'demo' }), ScenarioError);
  });

  test('compactHistory: an old resourceVersion gets a 410 Expired ERROR event, a list still answers', async () => {
    const rv = Number((await call(c, '/api/v1/namespaces/demo/pods')).json.metadata.resourceVersion);
    c.setPodReady('demo', 'web-2', false);
    c.compactHistory();
    const w = new Watch(c, `/api/v1/namespaces/demo/pods?watch=1&resourceVersion=${rv}`);
    assert.equal(await w.opened(), 200);
    const [event] = await w.atLeast(1);
    assert.equal(await w.finished, 'end');
    const current = Number((await call(c, `/api/v1/namespaces/demo/pods?resourceVersion=${rv}`)).json.metadata.resourceVersion);
    assert.deepEqual(event, {
      type: 'ERROR',
      object: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `too old resource version: ${rv} (${current})`,
        reason: 'Expired',
        code: 410,
      },
    });
    // From the current resourceVersion a watch works again.
    const fresh = new Watch(c, `/api/v1/namespaces/demo/pods?watch=1&resourceVersion=${current}`);
    c.setPodReady('demo', 'web-2', true);
    assert.equal((await fresh.atLeast(1))[0]?.type, 'MODIFIED');
    fresh.close();
  });

  test('timeoutSeconds ends the watch cleanly; cutWatches ends it abruptly', async () => {
    const timed = new Watch(c, '/api/v1/namespaces/demo/pods?watch=1&timeoutSeconds=1&resourceVersion=0');
    const started = Date.now();
    assert.equal(await timed.finished, 'end');
    assert.ok(Date.now() - started >= 900);

    const cut = new Watch(c, '/api/v1/namespaces/demo/pods?watch=1');
    await cut.atLeast(1);
    c.cutWatches();
    assert.equal(await cut.finished, 'abort');
  });

  test('sendInitialEvents streams the state and a bookmark', async () => {
    const w = new Watch(c, '/api/v1/namespaces/other/pods?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true');
    const [added, bookmark] = await w.atLeast(2);
    assert.equal(added?.type, 'ADDED');
    assert.equal(bookmark?.type, 'BOOKMARK');
    assert.equal(bookmark?.object.metadata.annotations['k8s.io/initial-events-end'], 'true');
    w.close();
  });

  test('watch errors: bad resourceVersion is 400', async () => {
    const r = await call(c, '/api/v1/namespaces/demo/pods?watch=1&resourceVersion=abc');
    assert.equal(r.status, 400);
    assert.equal(r.json.reason, 'BadRequest');
  });
});
