/**
 * The simulated API server's WebSocket port-forward, checked on the wire:
 * the KEP-4006 translation (strip `SPDY/3.1+`, the kubelet's answer decides,
 * the 101 selects `SPDY/3.1+portforward.k8s.io`, 400 without a tunnelling
 * subprotocol), the PortForwardWebsockets switch (scenario, run time and the
 * control endpoint), and the kubelet's own channel protocol proved with
 * @kubernetes/client-node's PortForward.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as https from 'node:https';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { KubeConfig, PortForward } from '@kubernetes/client-node';
import type { WebSocket } from 'ws';
import { SimCluster } from '../../src/sim/cluster.js';
import { demoScenario } from '../../src/sim/scenario.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw WebSocket upgrade to a pod's portforward path; the socket is closed after the answer. */
function wsUpgrade(cluster: SimCluster, path: string, protocols: string | undefined, token = cluster.adminToken): Promise<Answer> {
  const url = new URL(cluster.url);
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: url.hostname,
      port: url.port,
      path,
      method: 'GET',
      ca: cluster.caPem,
      headers: {
        Authorization: `Bearer ${token}`,
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
        ...(protocols !== undefined ? { 'Sec-WebSocket-Protocol': protocols } : {}),
      },
    });
    req.once('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' });
    });
    req.once('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

describe('the simulated API server’s WebSocket port-forward', () => {
  let cluster: SimCluster;

  before(async () => {
    const scenario = demoScenario();
    scenario.pods.push({ name: 'pending', namespace: 'demo', phase: 'Pending', ports: [{ containerPort: 80 }] });
    cluster = await SimCluster.start({ scenario, control: true });
  });
  after(() => cluster.close());

  const PF = '/api/v1/namespaces/demo/pods/web-0/portforward';

  test('a tunnelling request is answered 101 selecting SPDY/3.1+portforward.k8s.io, whatever else is offered', async () => {
    const before = cluster.counters().tunnels['SPDY/3.1+portforward.k8s.io'];
    const answer = await wsUpgrade(cluster, PF, 'SPDY/3.1+v9.portforward.k8s.io, SPDY/3.1+portforward.k8s.io');
    assert.equal(answer.status, 101);
    assert.equal(answer.headers['sec-websocket-protocol'], 'SPDY/3.1+portforward.k8s.io');
    assert.equal(answer.headers['upgrade'], 'websocket');
    assert.equal(cluster.counters().tunnels['SPDY/3.1+portforward.k8s.io'], before + 1);
  });

  test('a SPDY/3.1+ subprotocol that is not *.k8s.io: 400 "no tunneling spdy protocols provided", as text', async () => {
    const answer = await wsUpgrade(cluster, PF, 'SPDY/3.1+portforward.example.com');
    assert.equal(answer.status, 400);
    assert.equal(answer.body, 'unable to upgrade: no tunneling spdy protocols provided\n');
    assert.match(String(answer.headers['content-type']), /^text\/plain/);
  });

  test('the kubelet’s refusals are replayed as they are: negotiation (403), a pod with no sandbox (500)', async () => {
    const negotiation = await wsUpgrade(cluster, PF, 'SPDY/3.1+v9.portforward.k8s.io');
    assert.equal(negotiation.status, 403);
    assert.match(negotiation.body, /unable to negotiate protocol: client supports \[v9\.portforward\.k8s\.io\], server accepts \[portforward\.k8s\.io\]/);
    assert.equal(negotiation.headers['x-accepted-stream-protocol-versions'], 'portforward.k8s.io');
    const pending = await wsUpgrade(cluster, '/api/v1/namespaces/demo/pods/pending/portforward', 'SPDY/3.1+portforward.k8s.io');
    assert.equal(pending.status, 500);
    assert.match(pending.body, /pod not found \(\\"pending_demo\\"\)/);
  });

  test('authentication comes first (a bad token is 401), then the pod (unknown: 404)', async () => {
    assert.equal((await wsUpgrade(cluster, PF, 'SPDY/3.1+portforward.k8s.io', 'wrong-token')).status, 401);
    const missing = await wsUpgrade(cluster, '/api/v1/namespaces/demo/pods/nope/portforward', 'SPDY/3.1+portforward.k8s.io');
    assert.equal(missing.status, 404);
    assert.match(missing.body, /pods \\"nope\\" not found/);
  });

  test('PortForwardWebsockets off (control endpoint): the same request gets the kubelet protocol’s 400, and SPDY is untouched', async () => {
    const control = cluster.controlUrl!;
    const set = (on: boolean): Promise<Response> =>
      fetch(`${control}/feature-gates`, { method: 'POST', body: JSON.stringify({ PortForwardWebsockets: on }) });
    assert.equal((await set(false)).status, 204);
    try {
      assert.deepEqual(await (await fetch(`${control}/feature-gates`)).json(), { PortForwardWebsockets: false });
      const answer = await wsUpgrade(cluster, PF, 'SPDY/3.1+portforward.k8s.io');
      assert.equal(answer.status, 400);
      assert.match(answer.body, /query parameter \\"port\\" is required/);
    } finally {
      await set(true);
    }
    const bad = await fetch(`${control}/feature-gates`, { method: 'POST', body: JSON.stringify({ PortForwardWebsockets: 'no' }) });
    assert.equal(bad.status, 400);
    const counters = (await (await fetch(`${control}/counters`)).json()) as { tunnels: Record<string, number> };
    assert.ok(counters.tunnels['SPDY/3.1+portforward.k8s.io']! >= 1, JSON.stringify(counters));
  });

  test('a scenario can switch PortForwardWebsockets off, and an unknown gate is refused', async () => {
    const old = await SimCluster.start({ scenario: { ...demoScenario(), featureGates: { PortForwardWebsockets: false } } });
    try {
      assert.deepEqual(old.featureGates(), { PortForwardWebsockets: false });
      assert.equal((await wsUpgrade(old, PF, 'SPDY/3.1+portforward.k8s.io')).status, 400);
    } finally {
      await old.close();
    }
    await assert.rejects(SimCluster.start({ scenario: { ...demoScenario(), featureGates: { Nope: true } as never } }), /unknown field "Nope"/);
  });

  describe('the kubelet’s own channel protocol (?ports=), with @kubernetes/client-node’s PortForward', () => {
    function kubeConfig(): KubeConfig {
      const kc = new KubeConfig();
      kc.loadFromString(cluster.kubeconfigYaml());
      return kc;
    }

    test('echo through v4.channel.k8s.io: bytes both ways, the port prefix stripped, counted as v4.channel.k8s.io', async () => {
      const before = cluster.counters().tunnels['v4.channel.k8s.io'];
      const output = new PassThrough();
      const errors = new PassThrough();
      const input = new PassThrough();
      const received: Buffer[] = [];
      output.on('data', (c: Buffer) => received.push(c));
      const errorText: Buffer[] = [];
      errors.on('data', (c: Buffer) => errorText.push(c));
      const ws = (await new PortForward(kubeConfig()).portForward('demo', 'echo-0', [7], output, errors, input)) as WebSocket;
      try {
        assert.equal(ws.protocol, 'v4.channel.k8s.io');
        const payload = randomBytes(200_000);
        input.write(payload);
        await waitFor(() => Buffer.concat(received).length >= payload.length);
        assert.ok(Buffer.concat(received).equals(payload), 'echoed bytes differ');
        assert.equal(Buffer.concat(errorText).length, 0, Buffer.concat(errorText).toString());
        assert.equal(cluster.counters().tunnels['v4.channel.k8s.io'], before + 1);
      } finally {
        ws.close();
      }
    });

    test('a port nothing listens on: the kubelet’s reason arrives on the error channel', async () => {
      const output = new PassThrough();
      const errors = new PassThrough();
      const input = new PassThrough();
      const errorText: Buffer[] = [];
      errors.on('data', (c: Buffer) => errorText.push(c));
      const ws = (await new PortForward(kubeConfig()).portForward('demo', 'web-0', [9090], output, errors, input)) as WebSocket;
      try {
        await waitFor(() => Buffer.concat(errorText).length > 0);
        assert.match(Buffer.concat(errorText).toString(), /^error forwarding port 9090 to pod web-0, uid [0-9a-f-]+: failed to execute portforward.*connection refused/);
      } finally {
        ws.close();
      }
    });

    test('without ?ports the kubelet protocol answers 400 "query parameter "port" is required"; a bad port is 400 too', async () => {
      const none = await wsUpgrade(cluster, PF, 'v4.channel.k8s.io');
      assert.equal(none.status, 400);
      assert.match(none.body, /query parameter \\"port\\" is required/);
      const bad = await wsUpgrade(cluster, `${PF}?ports=http`, 'v4.channel.k8s.io');
      assert.equal(bad.status, 400);
      assert.match(bad.body, /unable to parse \\"http\\" as a port/);
      const unsupported = await wsUpgrade(cluster, `${PF}?ports=8080`, 'v9.channel.k8s.io');
      assert.equal(unsupported.status, 403);
    });
  });
});

async function waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
