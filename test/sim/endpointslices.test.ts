/**
 * EndpointSlices for named ports that differ between pods, and pod IP allocation.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SimCluster } from '../../src/sim/cluster.js';
import { type Json, call } from '../helpers/sim-api.js';

describe('EndpointSlices for named ports that differ between pods', () => {
  let c: SimCluster;
  before(async () => {
    c = await SimCluster.start({
      scenario: {
        pods: [
          { name: 'a', namespace: 'ns', labels: { app: 'x' }, ip: '10.1.0.1', ports: [{ name: 'http', containerPort: 8080 }] },
          { name: 'b', namespace: 'ns', labels: { app: 'x' }, ip: '10.1.0.2', ports: [{ name: 'http', containerPort: 9090 }] },
          { name: 'c', namespace: 'ns', labels: { app: 'x' }, ip: '10.1.0.3', ports: [{ name: 'other', containerPort: 7000 }] },
          { name: 'd', namespace: 'ns', labels: { app: 'x' }, ip: '10.1.0.4', ports: [{ name: 'http', containerPort: 8080 }], phase: 'Succeeded' },
          { name: 'e', namespace: 'ns', labels: { app: 'x' }, phase: 'Pending', ports: [{ name: 'http', containerPort: 8080 }] },
          { name: 'h', namespace: 'ns', labels: { app: 'x' }, ip: '10.1.0.8', hostname: 'h', subdomain: 'other-svc', ports: [{ name: 'http', containerPort: 8080 }] },
        ],
        services: [{ name: 'x', namespace: 'ns', selector: { app: 'x' }, ports: [{ name: 'web', port: 80, targetPort: 'http' }] }],
      },
    });
  });
  after(() => c.close());

  test('one slice per distinct port set; a pod lacking the port gets none; completed or IP-less pods are left out', async () => {
    const list = (await call(c, '/apis/discovery.k8s.io/v1/namespaces/ns/endpointslices')).json;
    const summary = list.items.map((s: Json) => ({ ports: s.ports, pods: (s.endpoints ?? []).map((e: Json) => e.targetRef.name) }));
    summary.sort((p: Json, q: Json) => (p.pods[0] < q.pods[0] ? -1 : 1));
    assert.deepEqual(summary, [
      { ports: [{ name: 'web', protocol: 'TCP', port: 8080 }], pods: ['a', 'h'] },
      { ports: [{ name: 'web', protocol: 'TCP', port: 9090 }], pods: ['b'] },
      { ports: null, pods: ['c'] },
    ]);
    const h = list.items.flatMap((s: Json) => s.endpoints ?? []).find((e: Json) => e.targetRef.name === 'h');
    assert.equal(h.hostname, undefined, 'hostname only when the subdomain names the service');
  });

  test('pods without a node or sandbox have no IP; phase changes allocate one', async () => {
    const e = (await call(c, '/api/v1/namespaces/ns/pods/e')).json;
    assert.equal(e.status.podIP, undefined);
    assert.equal(e.status.containerStatuses[0].state.waiting.reason, 'ContainerCreating');
    c.setPodPhase('ns', 'e', 'Running');
    const running = (await call(c, '/api/v1/namespaces/ns/pods/e')).json;
    assert.match(running.status.podIP, /^10\.244\./);
  });
});
