/**
 * The two transports and `auto` against the simulated cluster: each carries
 * a pair (the simulator's per-protocol counters say which one did), `auto`
 * falls back to SPDY where the WebSocket upgrade fails (an API server without
 * PortForwardWebsockets, RBAC that grants `create` but not `get`, a proxy that
 * refuses) and remembers it, a failure on both is one line naming both, and
 * the kubeconfig's proxy-url (an HTTP CONNECT proxy on loopback) works for both.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KubesocksError } from '../../src/errors.js';
import { KubeClient } from '../../src/kube/client.js';
import { demoScenario } from '../../src/sim/scenario.js';
import { TunnelPool } from '../../src/tunnel/pool.js';
import { TransportSelector, type Transport } from '../../src/tunnel/transport.js';
import { upgradeToPortForward, type UpgradeCredentials, type UpgradeOptions } from '../../src/tunnel/upgrade.js';
import { upgradeToWebSocketTunnel } from '../../src/tunnel/websocket-upgrade.js';
import { startTestCluster, type TestCluster } from '../helpers/sim.js';
import { exchangeToEnd } from '../helpers/streams.js';

const HTTP_GET = (path: string): Buffer => Buffer.from(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);

function expectCode(code: string, text?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof KubesocksError, `expected a KubesocksError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (text) assert.match(error.message, text);
    return true;
  };
}

/** A selector whose upgrades are the real ones, counted. */
function countingSelector(choice: 'auto' | Transport = 'auto'): { selector: TransportSelector; attempts: Record<Transport, number> } {
  const attempts: Record<Transport, number> = { spdy: 0, websocket: 0 };
  const selector = new TransportSelector(choice, {
    spdy: (c: UpgradeCredentials, o: UpgradeOptions) => (attempts.spdy++, upgradeToPortForward(c, o)),
    websocket: (c: UpgradeCredentials, o: UpgradeOptions) => (attempts.websocket++, upgradeToWebSocketTunnel(c, o)),
  });
  return { selector, attempts };
}

describe('port-forward transports against the simulated cluster', () => {
  let t: TestCluster;
  let admin: KubeClient;
  const clients: KubeClient[] = [];

  async function clientFor(user: string): Promise<KubeClient> {
    const client = await KubeClient.load({ kubeconfig: await t.kubeconfigFor(user) });
    clients.push(client);
    return client;
  }

  before(async () => {
    const scenario = demoScenario();
    scenario.users = [
      ...(scenario.users ?? []),
      { name: 'pf-create-only', token: 'token-create-only', rules: [{ verbs: ['get', 'list', 'watch'], resources: ['pods'] }, { verbs: ['create'], resources: ['pods/portforward'] }] },
      { name: 'pf-get-only', token: 'token-get-only', rules: [{ verbs: ['get'], resources: ['pods/portforward'] }] },
      { name: 'pf-both', token: 'token-both', rules: [{ verbs: ['get', 'create'], resources: ['pods/portforward'] }] },
    ];
    t = await startTestCluster(scenario);
    admin = await KubeClient.load({ kubeconfig: t.kubeconfig });
    clients.push(admin);
  });
  after(async () => {
    for (const c of clients) c.close();
    await t.close();
  });

  for (const transport of ['websocket', 'spdy'] as const) {
    test(`--transport ${transport} carries a pair, and the simulator counts it under its protocol`, async () => {
      t.cluster.setFeatureGates({ PortForwardWebsockets: true });
      const before = t.cluster.counters().tunnels;
      const pool = new TunnelPool(admin, { transport });
      try {
        const pair = await pool.open('demo', 'web-1', 8080);
        assert.match((await exchangeToEnd(pair, HTTP_GET('/t'))).toString(), /pod web-1 path \/t/);
        const echo = await pool.open('demo', 'echo-0', 7);
        const payload = Buffer.alloc(3 * 1024 * 1024 + 5, 0x5a);
        assert.ok((await exchangeToEnd(echo, payload)).equals(payload));
      } finally {
        pool.close();
      }
      const now = t.cluster.counters().tunnels;
      const protocol = transport === 'websocket' ? 'SPDY/3.1+portforward.k8s.io' : 'SPDY/3.1';
      const other = transport === 'websocket' ? 'SPDY/3.1' : 'SPDY/3.1+portforward.k8s.io';
      assert.equal(now[protocol] - before[protocol], 2, JSON.stringify(now));
      assert.equal(now[other], before[other], JSON.stringify(now));
    });
  }

  test('auto uses WebSockets where the API server has them', async () => {
    t.cluster.setFeatureGates({ PortForwardWebsockets: true });
    const { selector, attempts } = countingSelector();
    const { socket, transport } = await selector.open(admin, { namespace: 'demo', pod: 'web-0' });
    socket.destroy();
    assert.equal(transport, 'websocket');
    assert.deepEqual(attempts, { spdy: 0, websocket: 1 });
  });

  test('auto against an API server without PortForwardWebsockets falls back to SPDY once, then goes straight to SPDY', async (ctx) => {
    t.cluster.setFeatureGates({ PortForwardWebsockets: false });
    ctx.after(() => t.cluster.setFeatureGates({ PortForwardWebsockets: true }));
    const { selector, attempts } = countingSelector();
    const first = await selector.open(admin, { namespace: 'demo', pod: 'web-0' });
    first.socket.destroy();
    assert.equal(first.transport, 'spdy');
    assert.deepEqual(attempts, { spdy: 1, websocket: 1 });
    // Another pod of the same cluster: no failed WebSocket attempt again.
    const second = await selector.open(admin, { namespace: 'demo', pod: 'web-1' });
    second.socket.destroy();
    assert.equal(second.transport, 'spdy');
    assert.deepEqual(attempts, { spdy: 2, websocket: 1 });
  });

  test('--transport websocket against an API server without it: one line with the API server’s answer', async (ctx) => {
    t.cluster.setFeatureGates({ PortForwardWebsockets: false });
    ctx.after(() => t.cluster.setFeatureGates({ PortForwardWebsockets: true }));
    const { selector, attempts } = countingSelector('websocket');
    await assert.rejects(selector.open(admin, { namespace: 'demo', pod: 'web-0' }), expectCode('UPGRADE_FAILED', /^port-forward to pod demo\/web-0 failed: query parameter "port" is required$/));
    assert.deepEqual(attempts, { spdy: 0, websocket: 1 });
  });

  test('after WebSockets worked, an API server that loses them (downgrade) sends the next connection to SPDY', async (ctx) => {
    const { selector, attempts } = countingSelector();
    (await selector.open(admin, { namespace: 'demo', pod: 'web-0' })).socket.destroy();
    assert.equal(selector.proven, 'websocket');
    t.cluster.setFeatureGates({ PortForwardWebsockets: false });
    ctx.after(() => t.cluster.setFeatureGates({ PortForwardWebsockets: true }));
    const next = await selector.open(admin, { namespace: 'demo', pod: 'web-1' });
    next.socket.destroy();
    assert.equal(next.transport, 'spdy');
    assert.deepEqual(attempts, { spdy: 1, websocket: 2 });
  });

  test('after WebSockets worked, a deleted pod’s 404 is the pod’s: no SPDY attempt', async () => {
    t.cluster.setFeatureGates({ PortForwardWebsockets: true });
    const { selector, attempts } = countingSelector();
    (await selector.open(admin, { namespace: 'demo', pod: 'web-0' })).socket.destroy();
    await assert.rejects(selector.open(admin, { namespace: 'demo', pod: 'no-such-pod' }), expectCode('POD_GONE', /pods "no-such-pod" not found/));
    assert.deepEqual(attempts, { spdy: 0, websocket: 2 });
  });

  test('RBAC as 1.35: `create` alone is enough for SPDY, so auto falls back; --transport websocket says `get` is missing', async () => {
    t.cluster.setFeatureGates({ PortForwardWebsockets: true });
    const createOnly = await clientFor('pf-create-only');
    const auto = countingSelector();
    const opened = await auto.selector.open(createOnly, { namespace: 'demo', pod: 'web-0' });
    opened.socket.destroy();
    assert.equal(opened.transport, 'spdy');
    const ws = countingSelector('websocket');
    await assert.rejects(
      ws.selector.open(createOnly, { namespace: 'demo', pod: 'web-0' }),
      expectCode('FORBIDDEN', /User "pf-create-only" cannot get resource "pods\/portforward" in API group "" in the namespace "demo"/),
    );
  });

  test('RBAC as 1.35: the WebSocket GET needs `create` too; with `get` alone both attempts fail, named in one line', async () => {
    const getOnly = await clientFor('pf-get-only');
    const { selector, attempts } = countingSelector();
    await assert.rejects(
      selector.open(getOnly, { namespace: 'demo', pod: 'web-0' }),
      expectCode(
        'FORBIDDEN',
        /^port-forward to pod demo\/web-0 failed over both transports: WebSocket: .*User "pf-get-only" cannot create resource "pods\/portforward".*"get" and "create".*; SPDY: .*User "pf-get-only" cannot create resource "pods\/portforward"[^\n]*$/,
      ),
    );
    assert.deepEqual(attempts, { spdy: 1, websocket: 1 });
    const both = await clientFor('pf-both');
    const ok = await countingSelector('websocket').selector.open(both, { namespace: 'demo', pod: 'web-0' });
    ok.socket.destroy();
  });

  describe('through the kubeconfig’s proxy-url (an HTTP CONNECT proxy on loopback)', () => {
    let proxy: ConnectProxy;
    let proxied: KubeClient;

    before(async () => {
      proxy = await connectProxy();
      const file = join(t.dir, 'kubeconfig-proxied');
      const yaml = t.cluster.kubeconfigYaml().replace(/^(\s+)server: (.*)$/m, `$1server: $2\n$1proxy-url: "http://127.0.0.1:${proxy.port}"`);
      assert.match(yaml, /proxy-url/);
      await writeFile(file, yaml, { mode: 0o600 });
      proxied = await KubeClient.load({ kubeconfig: file });
      clients.push(proxied);
    });
    after(() => proxy.close());

    for (const transport of ['websocket', 'spdy'] as const) {
      test(`--transport ${transport} goes through the proxy`, async () => {
        t.cluster.setFeatureGates({ PortForwardWebsockets: true });
        const connects = proxy.connects.length;
        const pool = new TunnelPool(proxied, { transport });
        try {
          const pair = await pool.open('demo', 'web-2', 8080);
          assert.match((await exchangeToEnd(pair, HTTP_GET('/via-proxy'))).toString(), /pod web-2 path \/via-proxy/);
        } finally {
          pool.close();
        }
        assert.ok(proxy.connects.length > connects, 'the proxy saw no CONNECT');
        assert.equal(proxy.connects.at(-1), new URL(t.cluster.url).host);
      });
    }

    test('auto: a proxy that refuses the WebSocket attempt’s CONNECT sends it to SPDY, as kubectl falls back on a proxy error', async () => {
      t.cluster.setFeatureGates({ PortForwardWebsockets: true });
      proxy.refuseNext = 1;
      const { selector, attempts } = countingSelector();
      const opened = await selector.open(proxied, { namespace: 'demo', pod: 'web-0' });
      opened.socket.destroy();
      assert.equal(opened.transport, 'spdy');
      assert.deepEqual(attempts, { spdy: 1, websocket: 1 });
      assert.equal(proxy.refused, 1);
    });
  });
});

interface ConnectProxy {
  port: number;
  /** `host:port` of every CONNECT that was let through. */
  connects: string[];
  /** Refuse this many CONNECTs with 403 before letting any through. */
  refuseNext: number;
  refused: number;
  close(): Promise<void>;
}

async function connectProxy(): Promise<ConnectProxy> {
  const sockets = new Set<net.Socket>();
  const state: ConnectProxy = {
    port: 0,
    connects: [],
    refuseNext: 0,
    refused: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = http.createServer((_req, res) => {
    res.writeHead(405);
    res.end();
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    sockets.add(client);
    client.on('error', () => {});
    if (state.refuseNext > 0) {
      state.refuseNext--;
      state.refused++;
      client.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const [host, port] = (req.url ?? '').split(':');
    const upstream = net.connect(Number(port), host);
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    upstream.once('connect', () => {
      state.connects.push(req.url ?? '');
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    client.once('close', () => upstream.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  state.port = (server.address() as net.AddressInfo).port;
  return state;
}
