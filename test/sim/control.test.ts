/**
 * The control endpoint: counters, run-time pods, services and workloads, faults, and who may call it.
 */
import * as assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { SimCluster } from '../../src/sim/cluster.js';
import { type Json, call, Watch, PF, spdyUpgrade } from '../helpers/sim-api.js';

describe('control endpoint', () => {
  let c: SimCluster;
  before(async () => {
    c = await SimCluster.start({ control: true });
  });
  after(() => c.close());

  function control(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: unknown }> {
    const url = new URL(path, c.controlUrl);
    return new Promise((resolve, reject) => {
      const req = httpRequest(url, { method, agent: false, headers: { 'Content-Type': 'application/json', ...headers } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, json: text ? (JSON.parse(text) as unknown) : undefined });
        });
      });
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }

  test('is plain HTTP on loopback', () => {
    assert.match(c.controlUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
  });

  test('counters and reset', async () => {
    const up = await spdyUpgrade(c, PF('demo', 'web-0'));
    up.socket.destroy();
    const counters = (await control('GET', '/counters')).json as Record<string, number> & { tunnels: Record<string, number> };
    assert.deepEqual(Object.keys(counters).sort(), ['bytesFromPods', 'bytesToPods', 'openConnections', 'pairs', 'streams', 'tunnels', 'upgrades']);
    assert.ok((counters.upgrades ?? 0) >= 1);
    assert.ok((counters.tunnels['SPDY/3.1'] ?? 0) >= 1, JSON.stringify(counters.tunnels));
    assert.equal((await control('POST', '/counters/reset')).status, 204);
    assert.equal(((await control('GET', '/counters')).json as Record<string, number>).upgrades, 0);
  });

  test('pods: add, replace, readiness, phase, terminating, delete', async () => {
    assert.equal((await control('POST', '/pods', { name: 'ctl-0', namespace: 'demo', labels: { app: 'web' }, ip: '10.244.0.99', ports: [{ name: 'http', containerPort: 8080 }] })).status, 204);
    const pod = await call(c, '/api/v1/namespaces/demo/pods/ctl-0');
    assert.equal(pod.json.status.podIP, '10.244.0.99');
    assert.equal((await control('POST', '/pods', { name: 'ctl-0', namespace: 'demo', labels: { app: 'web', v: '2' }, ip: '10.244.0.99' })).status, 204);
    const replaced = (await call(c, '/api/v1/namespaces/demo/pods/ctl-0')).json;
    assert.equal(replaced.metadata.uid, pod.json.metadata.uid);
    assert.equal(replaced.metadata.labels.v, '2');

    assert.equal((await control('POST', '/pods/demo/ctl-0/ready', { ready: false })).status, 204);
    const ready = (await call(c, '/api/v1/namespaces/demo/pods/ctl-0')).json.status.conditions.find((x: Json) => x.type === 'Ready');
    assert.equal(ready.status, 'False');
    assert.equal((await control('POST', '/pods/demo/ctl-0/terminating', { terminating: true })).status, 204);
    assert.ok((await call(c, '/api/v1/namespaces/demo/pods/ctl-0')).json.metadata.deletionTimestamp);
    assert.equal((await control('POST', '/pods/demo/ctl-0/phase', { phase: 'Failed' })).status, 204);
    assert.equal((await call(c, '/api/v1/namespaces/demo/pods/ctl-0')).json.status.phase, 'Failed');

    assert.equal((await control('DELETE', '/pods/demo/ctl-0')).status, 204);
    assert.equal((await call(c, '/api/v1/namespaces/demo/pods/ctl-0')).status, 404);
    const again = await control('DELETE', '/pods/demo/ctl-0');
    assert.equal(again.status, 404);
    assert.equal((again.json as { message: string }).message, 'pods "ctl-0" not found');
  });

  test('bad bodies are 400 Status with the field named', async () => {
    const bad = await control('POST', '/pods', { name: 'x', namespace: 'demo', ports: [{ containerPort: 'x' }] });
    assert.equal(bad.status, 400);
    assert.equal((bad.json as { message: string }).message, 'pod.ports[0].containerPort: expected an integer 1-65535, got "x"');
    const ready = await control('POST', '/pods/demo/web-0/ready', { ready: 'yes' });
    assert.equal(ready.status, 400);
    const notJson = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(new URL('/services', c.controlUrl), { method: 'POST', agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end('{nope');
    });
    assert.equal(notJson, 400);
    assert.equal((await control('GET', '/nothing')).status, 404);
  });

  test('services add and delete', async () => {
    assert.equal((await control('POST', '/services', { name: 'ctl', namespace: 'demo', selector: { app: 'echo' }, ports: [{ name: 'e', port: 7 }] })).status, 204);
    assert.equal((await call(c, '/api/v1/namespaces/demo/services/ctl')).status, 200);
    const slices = (await call(c, `/apis/discovery.k8s.io/v1/namespaces/demo/endpointslices?labelSelector=${encodeURIComponent('kubernetes.io/service-name=ctl')}`)).json;
    assert.equal(slices.items[0].endpoints.length, 2);
    assert.equal((await control('DELETE', '/services/demo/ctl')).status, 204);
    assert.equal((await call(c, '/api/v1/namespaces/demo/services/ctl')).status, 404);
  });

  test('workloads add, replace and delete', async () => {
    const deployment = { name: 'ctl', namespace: 'demo', selector: { matchLabels: { app: 'echo' } }, replicas: 2 };
    assert.equal((await control('POST', '/deployments', deployment)).status, 204);
    const got = (await call(c, '/apis/apps/v1/namespaces/demo/deployments/ctl')).json;
    assert.equal(got.status.readyReplicas, 2);
    assert.equal((await control('POST', '/deployments', { ...deployment, replicas: 3 })).status, 204);
    assert.equal((await call(c, '/apis/apps/v1/namespaces/demo/deployments/ctl')).json.metadata.generation, 2);
    const bad = await control('POST', '/statefulsets', { name: 'x', namespace: 'demo', selector: {} });
    assert.equal(bad.status, 400);
    assert.equal((bad.json as Json).message, 'statefulset.selector: empty selector is invalid for an apps/v1 workload');
    assert.equal((await control('DELETE', '/deployments/demo/ctl')).status, 204);
    assert.equal((await call(c, '/apis/apps/v1/namespaces/demo/deployments/ctl')).status, 404);
    const missing = await control('DELETE', '/replicasets/demo/ctl');
    assert.equal(missing.status, 404);
    assert.equal((missing.json as Json).message, 'replicasets.apps "ctl" not found');
  });

  test('faults: cut-watches, revoke, restart-apiserver', async () => {
    const w = new Watch(c, '/api/v1/namespaces/demo/pods?watch=1');
    await w.atLeast(1);
    assert.equal((await control('POST', '/cut-watches')).status, 204);
    assert.equal(await w.finished, 'abort');

    assert.equal((await control('POST', '/users', { name: 'ctl-user', token: 'ctl-token' })).status, 204);
    assert.equal((await call(c, '/api/v1/namespaces', { token: 'ctl-token' })).status, 200);
    assert.equal((await control('POST', '/revoke', { token: 'ctl-token' })).status, 204);
    assert.equal((await call(c, '/api/v1/namespaces', { token: 'ctl-token' })).status, 401);

    const url = c.url;
    assert.equal((await control('POST', '/restart-apiserver')).status, 204);
    assert.equal(c.url, url);
    assert.equal((await call(c, '/api/v1/namespaces/demo/pods/web-0')).status, 200);
  });

  test('refuses other Host headers and browser pages', async () => {
    assert.equal((await control('GET', '/counters', undefined, { Host: 'evil.example:80' })).status, 403);
    assert.equal((await control('GET', '/counters', undefined, { Origin: 'http://evil.example' })).status, 403);
  });
});
