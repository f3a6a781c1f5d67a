/**
 * The simulated API server over real HTTPS (verified against the cluster's CA), read-only: authentication,
 * discovery, lists, pods and services shaped like real ones, 404s, label and field selectors, derived
 * EndpointSlices and server-side Tables.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SimCluster } from '../../src/sim/cluster.js';
import { type Json, call, STATUS_401, names } from '../helpers/sim-api.js';

describe('the demo cluster, read-only', () => {
  let c: SimCluster;
  before(async () => {
    c = await SimCluster.start();
  });
  after(() => c.close());

  test('listens on https://127.0.0.1 with a certificate the CA verifies', () => {
    assert.match(c.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(c.caPem, /^-----BEGIN CERTIFICATE-----\n/);
  });

  test('no token, an unknown token → 401 with the exact Status', async () => {
    for (const token of [null, 'not-a-token']) {
      for (const path of ['/api/v1/namespaces/demo/pods', '/version', '/api']) {
        const r = await call(c, path, { token });
        assert.equal(r.status, 401, `${path} with ${token}`);
        assert.match(String(r.headers['content-type']), /^application\/json/);
        assert.deepEqual(r.json, STATUS_401);
        assert.equal(r.text, JSON.stringify(STATUS_401));
      }
    }
  });

  test('discovery documents', async () => {
    const version = (await call(c, '/version')).json;
    assert.equal(version.major, '1');
    assert.match(version.gitVersion, /^v1\.\d+\./);

    const api = await call(c, '/api');
    assert.equal(api.json.kind, 'APIVersions');
    assert.deepEqual(api.json.versions, ['v1']);
    assert.equal(api.headers['content-type'], 'application/json');

    const v1 = (await call(c, '/api/v1')).json;
    assert.equal(v1.kind, 'APIResourceList');
    const byName = new Map<string, Json>(v1.resources.map((r: Json) => [r.name, r]));
    assert.equal(byName.get('pods')?.kind, 'Pod');
    assert.equal(byName.get('pods')?.namespaced, true);
    assert.deepEqual(byName.get('pods')?.shortNames, ['po']);
    assert.deepEqual(byName.get('services')?.shortNames, ['svc']);
    assert.equal(byName.get('namespaces')?.namespaced, false);
    assert.deepEqual(byName.get('pods/portforward')?.verbs, ['create', 'get']);

    assert.deepEqual(byName.get('endpoints')?.shortNames, ['ep']);
    assert.equal(byName.get('endpoints')?.kind, 'Endpoints');

    const apis = (await call(c, '/apis')).json;
    assert.equal(apis.kind, 'APIGroupList');
    assert.deepEqual(apis.groups.map((g: Json) => g.name), ['apps', 'discovery.k8s.io'], 'in the real server\'s order');
    assert.ok(apis.groups.some((g: Json) => g.name === 'discovery.k8s.io' && g.preferredVersion.groupVersion === 'discovery.k8s.io/v1'));
    assert.equal((await call(c, '/apis/discovery.k8s.io')).json.kind, 'APIGroup');
    const group = (await call(c, '/apis/discovery.k8s.io/v1')).json;
    assert.deepEqual(
      group.resources.map((r: Json) => [r.name, r.kind]),
      [['endpointslices', 'EndpointSlice']],
    );
    const apps = (await call(c, '/apis/apps')).json;
    assert.deepEqual([apps.kind, apps.name, apps.preferredVersion], ['APIGroup', 'apps', { groupVersion: 'apps/v1', version: 'v1' }]);
    const appsV1 = (await call(c, '/apis/apps/v1')).json;
    assert.equal(appsV1.groupVersion, 'apps/v1');
    assert.deepEqual(
      appsV1.resources.map((r: Json) => [r.name, r.kind, r.shortNames, r.namespaced, r.verbs]),
      [
        ['deployments', 'Deployment', ['deploy'], true, ['get', 'list', 'watch']],
        ['replicasets', 'ReplicaSet', ['rs'], true, ['get', 'list', 'watch']],
        ['statefulsets', 'StatefulSet', ['sts'], true, ['get', 'list', 'watch']],
      ],
    );

    // Aggregated discovery is answered with plain JSON: kubectl falls back.
    const aggregated = await call(c, '/api', { headers: { Accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json' } });
    assert.equal(aggregated.headers['content-type'], 'application/json');
    assert.equal(aggregated.json.kind, 'APIVersions');

    for (const path of ['/openapi/v2', '/openapi/v3', '/apis/apps/v2', '/apis/apps/v1/namespaces/demo/daemonsets', '/api/v1/namespaces/demo/deployments', '/nope']) {
      const r = await call(c, path);
      assert.equal(r.status, 404, path);
      assert.equal(r.json.reason, 'NotFound');
      assert.equal(r.json.message, 'the server could not find the requested resource');
    }
  });

  test('lists carry kind, resourceVersion and sorted items without kind', async () => {
    const list = (await call(c, '/api/v1/namespaces/demo/pods?limit=500&timeout=32s')).json;
    assert.equal(list.kind, 'PodList');
    assert.equal(list.apiVersion, 'v1');
    assert.match(list.metadata.resourceVersion, /^\d+$/);
    assert.deepEqual(names(list), ['db-0', 'db-1', 'echo-0', 'echo-1', 'lonely', 'web-0', 'web-1', 'web-2', 'web-3']);
    assert.equal(list.items[0].kind, undefined);

    const all = (await call(c, '/api/v1/pods')).json;
    assert.ok(all.items.some((p: Json) => p.metadata.namespace === 'other' && p.metadata.name === 'api-0'));
    assert.equal(all.items.length, 10);

    const svcs = (await call(c, '/api/v1/services')).json;
    assert.equal(svcs.kind, 'ServiceList');
    assert.deepEqual(names(svcs), ['db', 'docs', 'echo', 'web', 'api']);

    const slices = (await call(c, '/apis/discovery.k8s.io/v1/endpointslices')).json;
    assert.equal(slices.kind, 'EndpointSliceList');
    assert.equal(slices.apiVersion, 'discovery.k8s.io/v1');

    // An unknown namespace lists nothing, like a real server.
    assert.deepEqual((await call(c, '/api/v1/namespaces/nowhere/pods')).json.items, []);
  });

  test('pods look like real ones', async () => {
    const pod = (await call(c, '/api/v1/namespaces/demo/pods/web-0')).json;
    assert.equal(pod.kind, 'Pod');
    assert.equal(pod.apiVersion, 'v1');
    assert.match(pod.metadata.uid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.match(pod.metadata.resourceVersion, /^\d+$/);
    assert.match(pod.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual(pod.metadata.labels, { app: 'web' });
    assert.equal(pod.spec.nodeName, 'sim-node-1');
    assert.deepEqual(pod.spec.containers[0].ports, [
      { name: 'http', containerPort: 8080, protocol: 'TCP' },
      { name: 'metrics', containerPort: 9090, protocol: 'TCP' },
    ]);
    assert.equal(pod.status.phase, 'Running');
    assert.equal(pod.status.podIP, '10.244.0.10');
    assert.deepEqual(pod.status.podIPs, [{ ip: '10.244.0.10' }]);
    const ready = pod.status.conditions.find((cond: Json) => cond.type === 'Ready');
    assert.equal(ready.status, 'True');
    assert.equal(pod.status.containerStatuses[0].ready, true);
    assert.equal(pod.status.containerStatuses[0].restartCount, 0);
    assert.equal(pod.status.containerStatuses[0].started, true);
    assert.equal(pod.metadata.deletionTimestamp, undefined);

    const notReady = (await call(c, '/api/v1/namespaces/demo/pods/web-3')).json;
    assert.equal(notReady.status.conditions.find((cond: Json) => cond.type === 'Ready').status, 'False');
    assert.equal(notReady.status.containerStatuses[0].ready, false);

    const db0 = (await call(c, '/api/v1/namespaces/demo/pods/db-0')).json;
    assert.equal(db0.spec.hostname, 'db-0');
    assert.equal(db0.spec.subdomain, 'db');
  });

  test('services: cluster IPs, headless, ExternalName, named target ports', async () => {
    const web = (await call(c, '/api/v1/namespaces/demo/services/web')).json;
    assert.equal(web.kind, 'Service');
    assert.equal(web.spec.type, 'ClusterIP');
    assert.equal(web.spec.clusterIP, '10.96.100.10');
    assert.deepEqual(web.spec.clusterIPs, ['10.96.100.10']);
    assert.deepEqual(web.spec.ports, [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 'http' }]);
    assert.deepEqual(web.spec.selector, { app: 'web' });

    const db = (await call(c, '/api/v1/namespaces/demo/services/db')).json;
    assert.equal(db.spec.clusterIP, 'None');

    const docs = (await call(c, '/api/v1/namespaces/demo/services/docs')).json;
    assert.equal(docs.spec.type, 'ExternalName');
    assert.equal(docs.spec.externalName, 'example.com');
    assert.equal(docs.spec.clusterIP, undefined);
    assert.equal(docs.spec.selector, undefined);

    const api = (await call(c, '/api/v1/namespaces/other/services/api')).json;
    assert.equal(api.spec.ports[0].targetPort, 8080);
  });

  test('namespaces: the scenario\'s plus default and kube-system, Active', async () => {
    const list = (await call(c, '/api/v1/namespaces')).json;
    assert.equal(list.kind, 'NamespaceList');
    assert.deepEqual(names(list), ['default', 'demo', 'kube-system', 'other']);
    const demo = (await call(c, '/api/v1/namespaces/demo')).json;
    assert.equal(demo.kind, 'Namespace');
    assert.equal(demo.status.phase, 'Active');
    const missing = await call(c, '/api/v1/namespaces/nope');
    assert.equal(missing.status, 404);
    assert.equal(missing.json.message, 'namespaces "nope" not found');
  });

  test('404s name the resource (group-qualified outside the core group)', async () => {
    const pod = await call(c, '/api/v1/namespaces/demo/pods/x');
    assert.equal(pod.status, 404);
    assert.deepEqual(pod.json, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'pods "x" not found',
      reason: 'NotFound',
      details: { name: 'x', kind: 'pods' },
      code: 404,
    });
    const slice = await call(c, '/apis/discovery.k8s.io/v1/namespaces/demo/endpointslices/x');
    assert.equal(slice.json.message, 'endpointslices.discovery.k8s.io "x" not found');
    assert.deepEqual(slice.json.details, { name: 'x', group: 'discovery.k8s.io', kind: 'endpointslices' });
    assert.equal((await call(c, '/api/v1/namespaces/demo/services/x')).json.message, 'services "x" not found');
  });

  test('label selectors', async () => {
    const sel = async (s: string) => names((await call(c, `/api/v1/namespaces/demo/pods?labelSelector=${encodeURIComponent(s)}`)).json);
    assert.deepEqual(await sel('app=web'), ['web-0', 'web-1', 'web-2', 'web-3']);
    assert.deepEqual(await sel('app==echo'), ['echo-0', 'echo-1']);
    assert.deepEqual(await sel('app in (echo, db)'), ['db-0', 'db-1', 'echo-0', 'echo-1']);
    assert.deepEqual(await sel('app notin (web,echo,db)'), ['lonely']);
    assert.deepEqual(await sel('app!=web,app!=echo'), ['db-0', 'db-1', 'lonely']);
    assert.deepEqual(await sel('app'), ['db-0', 'db-1', 'echo-0', 'echo-1', 'lonely', 'web-0', 'web-1', 'web-2', 'web-3']);
    assert.deepEqual(await sel('!app'), []);
    assert.deepEqual(await sel('app=web,tier=db'), []);
    assert.deepEqual(await sel(''), await sel('app'));
    const bad = await call(c, `/api/v1/namespaces/demo/pods?labelSelector=${encodeURIComponent('app in web')}`);
    assert.equal(bad.status, 400);
    assert.equal(bad.json.reason, 'BadRequest');
    assert.match(bad.json.message, /^unable to parse requirement/);
  });

  test('field selectors', async () => {
    const sel = async (s: string, path = '/api/v1/namespaces/demo/pods') => names((await call(c, `${path}?fieldSelector=${encodeURIComponent(s)}`)).json);
    assert.deepEqual(await sel('metadata.name=web-1'), ['web-1']);
    assert.deepEqual(await sel('metadata.name==web-1'), ['web-1']);
    assert.deepEqual(await sel('metadata.name=api-0,metadata.namespace=other', '/api/v1/pods'), ['api-0']);
    assert.deepEqual(await sel('metadata.name=nothing'), []);
    assert.equal((await sel('metadata.name!=web-1')).length, 8);
    assert.equal((await sel('status.phase=Running')).length, 9);
    assert.deepEqual(await sel('metadata.name=demo', '/api/v1/namespaces'), ['demo']);
    const bad = await call(c, '/api/v1/namespaces/demo/pods?fieldSelector=spec.nope%3Dx');
    assert.equal(bad.status, 400);
    assert.equal(bad.json.message, 'field label not supported: spec.nope');
  });

  test('EndpointSlices derived from services and pods', async () => {
    const list = (await call(c, '/apis/discovery.k8s.io/v1/namespaces/demo/endpointslices')).json;
    const bySvc = (svc: string) => list.items.filter((s: Json) => s.metadata.labels['kubernetes.io/service-name'] === svc);
    assert.equal(bySvc('docs').length, 0, 'no slices for an ExternalName service');

    const [web, ...moreWeb] = bySvc('web');
    assert.equal(moreWeb.length, 0);
    assert.match(web.metadata.name, /^web-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    assert.equal(web.metadata.generateName, 'web-');
    assert.equal(web.metadata.labels['endpointslice.kubernetes.io/managed-by'], 'endpointslice-controller.k8s.io');
    assert.equal(web.metadata.ownerReferences[0].kind, 'Service');
    assert.equal(web.addressType, 'IPv4');
    assert.deepEqual(web.ports, [{ name: 'http', protocol: 'TCP', port: 8080 }]);
    const ep = (name: string) => web.endpoints.find((e: Json) => e.targetRef.name === name);
    assert.deepEqual(ep('web-0').addresses, ['10.244.0.10']);
    assert.deepEqual(ep('web-0').conditions, { ready: true, serving: true, terminating: false });
    assert.deepEqual(ep('web-3').conditions, { ready: false, serving: false, terminating: false });
    assert.equal(ep('web-0').nodeName, 'sim-node-1');
    const pod = (await call(c, '/api/v1/namespaces/demo/pods/web-0')).json;
    assert.deepEqual(ep('web-0').targetRef, { kind: 'Pod', namespace: 'demo', name: 'web-0', uid: pod.metadata.uid });
    assert.equal(ep('web-0').hostname, undefined);

    const [db] = bySvc('db');
    assert.equal(db.metadata.labels['service.kubernetes.io/headless'], '');
    assert.deepEqual(db.endpoints.map((e: Json) => e.hostname), ['db-0', 'db-1']);
    assert.deepEqual(db.ports, [{ name: 'postgres', protocol: 'TCP', port: 5432 }]);

    const [echo] = bySvc('echo');
    assert.deepEqual(echo.ports, [{ name: 'echo', protocol: 'TCP', port: 7 }]);

    const byLabel = (await call(c, `/apis/discovery.k8s.io/v1/namespaces/demo/endpointslices?labelSelector=${encodeURIComponent('kubernetes.io/service-name=web')}`)).json;
    assert.deepEqual(names(byLabel), [web.metadata.name]);
    const single = (await call(c, `/apis/discovery.k8s.io/v1/namespaces/demo/endpointslices/${web.metadata.name}`)).json;
    assert.equal(single.kind, 'EndpointSlice');
    assert.equal(single.apiVersion, 'discovery.k8s.io/v1');
  });

  test('server-side Tables for kubectl get', async () => {
    const table = await call(c, '/api/v1/namespaces/demo/pods', { headers: { Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json' } });
    assert.equal(table.json.kind, 'Table');
    assert.equal(table.json.apiVersion, 'meta.k8s.io/v1');
    assert.deepEqual(table.json.columnDefinitions.map((col: Json) => col.name), ['Name', 'Ready', 'Status', 'Restarts', 'Age', 'IP', 'Node', 'Nominated Node', 'Readiness Gates']);
    const row = table.json.rows.find((r: Json) => r.cells[0] === 'web-3');
    assert.deepEqual(row.cells.slice(0, 4), ['web-3', '0/1', 'Running', '0']);
    assert.equal(row.object.kind, 'PartialObjectMetadata');
    assert.equal(row.object.metadata.namespace, 'demo');
  });
});
