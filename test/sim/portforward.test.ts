/**
 * The port-forward upgrade negotiation: 101 with the three headers, protocol offers, and every refusal.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SimCluster } from '../../src/sim/cluster.js';
import { call, type RawReply, raw, PF, spdyUpgrade } from '../helpers/sim-api.js';

describe('port-forward upgrade negotiation', () => {
  let c: SimCluster;
  before(async () => {
    c = await SimCluster.start();
    c.addPod({ name: 'unscheduled', namespace: 'demo', nodeName: null, phase: 'Pending', ports: [{ containerPort: 80 }] });
    c.addPod({ name: 'pending', namespace: 'demo', phase: 'Pending', ports: [{ containerPort: 80 }] });
    c.addPod({ name: 'done', namespace: 'demo', phase: 'Succeeded', ip: '10.244.7.7', ports: [{ containerPort: 80 }] });
  });
  after(() => c.close());

  const statusOf = (r: RawReply) => JSON.parse(r.body) as { message: string; reason: string; code: number; kind: string };

  test('101 with the three headers, counted, socket handed on', async () => {
    const before = c.counters().upgrades;
    const r = await spdyUpgrade(c, PF('demo', 'web-0'));
    assert.equal(r.statusLine, 'HTTP/1.1 101 Switching Protocols');
    assert.deepEqual(r.headers.get('connection'), ['Upgrade']);
    assert.deepEqual(r.headers.get('upgrade'), ['SPDY/3.1']);
    assert.deepEqual(r.headers.get('x-stream-protocol-version'), ['portforward.k8s.io']);
    assert.ok(r.headers.get('date'));
    assert.deepEqual([...r.headers.keys()].sort(), ['connection', 'date', 'upgrade', 'x-stream-protocol-version']);
    assert.equal(c.counters().upgrades, before + 1);
    r.socket.destroy();
  });

  test('offers as a comma list or several headers; Upgrade is case-insensitive', async () => {
    const list = await spdyUpgrade(c, PF('demo', 'web-0'), { omit: ['X-Stream-Protocol-Version'], extra: ['X-Stream-Protocol-Version: v4.channel.k8s.io, portforward.k8s.io'] });
    assert.equal(list.status, 101);
    list.socket.destroy();
    const several = await spdyUpgrade(c, PF('demo', 'web-0'), { extra: ['X-Stream-Protocol-Version: something.else'] });
    assert.equal(several.status, 101);
    several.socket.destroy();
    const lower = await spdyUpgrade(c, PF('demo', 'web-0'), { omit: ['Upgrade'], extra: ['Upgrade: spdy/3.1'] });
    assert.equal(lower.status, 101);
    lower.socket.destroy();
  });

  test('missing X-Stream-Protocol-Version → 400', async () => {
    const r = await spdyUpgrade(c, PF('demo', 'web-0'), { omit: ['X-Stream-Protocol-Version'] });
    assert.equal(r.status, 400);
    assert.equal(statusOf(r).kind, 'Status');
    assert.equal(statusOf(r).message, 'unable to upgrade: X-Stream-Protocol-Version is required');
  });

  test('no common protocol → 403 with X-Accepted-Stream-Protocol-Versions', async () => {
    const r = await spdyUpgrade(c, PF('demo', 'web-0'), { omit: ['X-Stream-Protocol-Version'], extra: ['X-Stream-Protocol-Version: v4.channel.k8s.io'] });
    assert.equal(r.status, 403);
    assert.deepEqual(r.headers.get('x-accepted-stream-protocol-versions'), ['portforward.k8s.io']);
    assert.equal(statusOf(r).message, 'unable to upgrade: unable to negotiate protocol: client supports [v4.channel.k8s.io], server accepts [portforward.k8s.io]');
  });

  test('a pod that does not exist → 404', async () => {
    const r = await spdyUpgrade(c, PF('demo', 'ghost'));
    assert.equal(r.status, 404);
    assert.deepEqual(statusOf(r), {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'pods "ghost" not found',
      reason: 'NotFound',
      details: { name: 'ghost', kind: 'pods' },
      code: 404,
    });
  });

  test('an unscheduled pod → 400 no host; a pod without a running sandbox → the kubelet\'s pod not found', async () => {
    const unscheduled = await spdyUpgrade(c, PF('demo', 'unscheduled'));
    assert.equal(unscheduled.status, 400);
    assert.equal(statusOf(unscheduled).message, 'pod unscheduled does not have a host assigned');
    for (const pod of ['pending', 'done']) {
      const r = await spdyUpgrade(c, PF('demo', pod));
      assert.equal(r.status, 500, pod);
      assert.equal(statusOf(r).reason, 'InternalError');
      assert.equal(statusOf(r).message, `pod not found ("${pod}_demo")`);
    }
  });

  test('RBAC: create pods/portforward, with the exact message', async () => {
    const r = await spdyUpgrade(c, PF('demo', 'web-0'), { token: c.tokenFor('viewer') });
    assert.equal(r.status, 403);
    assert.deepEqual(statusOf(r), {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'pods "web-0" is forbidden: User "viewer" cannot create resource "pods/portforward" in API group "" in the namespace "demo"',
      reason: 'Forbidden',
      details: { name: 'web-0', kind: 'pods' },
      code: 403,
    });
    const scoped = await spdyUpgrade(c, PF('other', 'api-0'), { token: c.tokenFor('scoped') });
    assert.equal(statusOf(scoped).message, 'pods "api-0" is forbidden: User "scoped" cannot create resource "pods/portforward" in API group "" in the namespace "other"');
    const nowatch = await spdyUpgrade(c, PF('demo', 'web-0'), { token: c.tokenFor('nowatch') });
    assert.equal(nowatch.status, 101);
    nowatch.socket.destroy();
    const anonymous = await spdyUpgrade(c, PF('demo', 'web-0'), { token: null });
    assert.equal(anonymous.status, 401);
  });

  test('with PortForwardWebsockets off, a tunnelling WebSocket request gets the kubelet protocol’s 400 (kubectl falls back to SPDY)', async (t) => {
    c.setFeatureGates({ PortForwardWebsockets: false });
    t.after(() => c.setFeatureGates({ PortForwardWebsockets: true }));
    const r = await raw(c, [
      `GET ${PF('demo', 'web-0')} HTTP/1.1`,
      `Host: ${new URL(c.url).host}`,
      `Authorization: Bearer ${c.adminToken}`,
      'Connection: Upgrade',
      'Upgrade: websocket',
      'Sec-WebSocket-Version: 13',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io',
    ]);
    assert.equal(r.status, 400);
    assert.equal(statusOf(r).message, 'query parameter "port" is required');
  });

  test('Upgrade other than SPDY/3.1, or no upgrade at all → 400', async () => {
    const h2c = await spdyUpgrade(c, PF('demo', 'web-0'), { omit: ['Upgrade'], extra: ['Upgrade: h2c'] });
    assert.equal(h2c.status, 400);
    assert.equal(statusOf(h2c).message, 'unable to upgrade: missing upgrade headers in request');
    const plain = await call(c, PF('demo', 'web-0'), { method: 'POST', headers: { 'X-Stream-Protocol-Version': 'portforward.k8s.io' } });
    assert.equal(plain.status, 400);
    assert.equal(plain.json.message, 'unable to upgrade: missing upgrade headers in request');
    const plainNoAuth = await call(c, PF('demo', 'web-0'), { method: 'POST', token: null });
    assert.equal(plainNoAuth.status, 401);
  });

  test('upgrades elsewhere are refused with a Status', async () => {
    const r = await spdyUpgrade(c, '/api/v1/namespaces/demo/pods/web-0/exec');
    assert.equal(r.status, 400);
    assert.equal(statusOf(r).kind, 'Status');
  });
});
