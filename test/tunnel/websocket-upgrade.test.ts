/**
 * The WebSocket upgrade's failures, with real servers on loopback: what each
 * tells the API server's health (kube/health.ts, behind /readyz and the fast
 * failure of cluster names), its deadline, and which ones send `auto` to SPDY.
 *
 * - a TLS server that completes the handshake and never answers the upgrade:
 *   TIMEOUT within the bound, the server marked unreachable, the connection
 *   closed, and no SPDY attempt (it would hang the same way);
 * - a closed port: API_UNREACHABLE in the one line naming the server;
 * - refused credentials (401 after the refresh): the server marked unauthorized;
 * - a gateway in front of the simulator that answers the WebSocket GET with a
 *   101 that is not our tunnel (another subprotocol, none, a wrong
 *   Sec-WebSocket-Accept): UPGRADE_FAILED, the server answered (ok), and
 *   `auto` falls back to SPDY once for the cluster and remembers it.
 *
 * (The simulator with PortForwardWebsockets off, RBAC and proxies are in transport.test.ts.)
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { KubesocksError } from '../../src/errors.js';
import { KubeClient } from '../../src/kube/client.js';
import { simCerts } from '../../src/sim/certs.js';
import { demoScenario } from '../../src/sim/scenario.js';
import { TunnelPool } from '../../src/tunnel/pool.js';
import { TransportSelector, type Transport } from '../../src/tunnel/transport.js';
import { upgradeToPortForward, type UpgradeCredentials, type UpgradeOptions } from '../../src/tunnel/upgrade.js';
import { upgradeToWebSocketTunnel, WEBSOCKET_PORT_FORWARD_PROTOCOL } from '../../src/tunnel/websocket-upgrade.js';
import { startTestCluster, type TestCluster } from '../helpers/sim.js';
import { exchangeToEnd } from '../helpers/streams.js';

const HTTP_GET = (path: string): Buffer => Buffer.from(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
/** The upgrade deadline these tests give (the default is UPGRADE_TIMEOUT_MS, 30 s). */
const DEADLINE_MS = 1000;

function expectCode(code: string, text?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof KubesocksError, `expected a KubesocksError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (text) assert.match(error.message, text);
    return true;
  };
}

function countingSelector(choice: 'auto' | Transport = 'auto'): { selector: TransportSelector; attempts: Record<Transport, number> } {
  const attempts: Record<Transport, number> = { spdy: 0, websocket: 0 };
  const selector = new TransportSelector(choice, {
    spdy: (c: UpgradeCredentials, o: UpgradeOptions) => (attempts.spdy++, upgradeToPortForward(c, o)),
    websocket: (c: UpgradeCredentials, o: UpgradeOptions) => (attempts.websocket++, upgradeToWebSocketTunnel(c, o)),
  });
  return { selector, attempts };
}

/** What a fake server answers to a WebSocket GET, given its Sec-WebSocket-Key. */
type WebSocketAnswer = (key: string) => string;

const accept = (key: string): string => createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
const switching = (headers: string[]): string => ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', ...headers, '', ''].join('\r\n');

const ANSWERS: Array<{ name: string; answer: WebSocketAnswer; message: RegExp }> = [
  {
    name: 'a 101 selecting another subprotocol',
    answer: (key) => switching([`Sec-WebSocket-Accept: ${accept(key)}`, 'Sec-WebSocket-Protocol: v4.channel.k8s.io']),
    message: /^port-forward to pod demo\/web-\d: the API server selected WebSocket subprotocol "v4\.channel\.k8s\.io", not SPDY\/3\.1\+portforward\.k8s\.io$/,
  },
  {
    name: 'a 101 selecting no subprotocol',
    answer: (key) => switching([`Sec-WebSocket-Accept: ${accept(key)}`]),
    message: /the API server selected no WebSocket subprotocol, not SPDY\/3\.1\+portforward\.k8s\.io$/,
  },
  {
    name: 'a 101 with a wrong Sec-WebSocket-Accept',
    answer: () => switching([`Sec-WebSocket-Accept: ${accept('not the key')}`, `Sec-WebSocket-Protocol: ${WEBSOCKET_PORT_FORWARD_PROTOCOL}`]),
    message: /WebSocket handshake failed: Invalid Sec-WebSocket-Accept header/,
  },
];

interface FakeServer {
  port: number;
  /** Request heads received, one per connection (a connection goes by its first request). */
  heads: string[];
  /** Connections accepted and not yet closed. */
  open: Set<net.Socket>;
  close(): Promise<void>;
}

/**
 * A TLS server with the simulator's certificate (so the kubeconfig's CA
 * trusts it). `webSocket` answers a WebSocket GET; every other connection is
 * relayed to `upstream` (the simulator) unless there is none, in which case
 * it is read and never answered.
 */
async function fakeServer(options: { webSocket?: WebSocketAnswer; upstream?: URL }): Promise<FakeServer> {
  const certs = await simCerts();
  const state: FakeServer = {
    port: 0,
    heads: [],
    open: new Set(),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of state.open) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = tls.createServer({ key: certs.keyPem, cert: certs.certPem }, (client) => {
    state.open.add(client);
    client.on('error', () => {});
    client.once('close', () => state.open.delete(client));
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      client.off('data', onData);
      const text = head.subarray(0, end).toString('latin1');
      state.heads.push(text);
      if (options.webSocket && /^upgrade:\s*websocket\s*$/im.test(text)) {
        client.write(options.webSocket(/^sec-websocket-key:\s*(\S+)/im.exec(text)?.[1] ?? ''));
        return;
      }
      if (!options.upstream) return; // a black hole: TLS done, the request read, no answer ever
      const upstream = tls.connect({ host: options.upstream.hostname, port: Number(options.upstream.port), ca: certs.caPem });
      state.open.add(upstream);
      upstream.on('error', () => client.destroy());
      upstream.once('close', () => {
        state.open.delete(upstream);
        client.destroy();
      });
      client.once('close', () => upstream.destroy());
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    };
    client.on('data', onData);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  state.port = (server.address() as net.AddressInfo).port;
  return state;
}

describe('the WebSocket upgrade’s failures, health and fallback', () => {
  let t: TestCluster;
  const clients: KubeClient[] = [];
  const servers: FakeServer[] = [];

  /** A client whose kubeconfig names `port` on 127.0.0.1 instead of the simulator (same CA and token). */
  async function clientAt(port: number, edit: (yaml: string) => string = (y) => y): Promise<KubeClient> {
    const sim = new URL(t.cluster.url);
    const text = await readFile(t.kubeconfig, 'utf8');
    const file = join(t.dir, `kubeconfig-${port}-${clients.length}`);
    await writeFile(file, edit(text.split(`https://${sim.host}`).join(`https://127.0.0.1:${port}`)), { mode: 0o600 });
    const client = await KubeClient.load({ kubeconfig: file });
    clients.push(client);
    return client;
  }

  before(async () => {
    t = await startTestCluster(demoScenario());
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const s of servers) await s.close();
    await t.close();
  });

  test('a server that completes TLS and never answers: TIMEOUT within the deadline, API server unreachable, connection closed', async () => {
    const silent = await fakeServer({});
    servers.push(silent);
    const client = await clientAt(silent.port);
    assert.equal(client.health.state, 'unknown');
    const started = performance.now();
    await assert.rejects(
      upgradeToWebSocketTunnel(client, { namespace: 'demo', pod: 'web-0', timeoutMs: DEADLINE_MS }),
      expectCode('TIMEOUT', /^port-forward WebSocket upgrade for pod demo\/web-0 got no answer from the API server in 1 s$/),
    );
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= DEADLINE_MS - 50 && elapsed < DEADLINE_MS + 5000, `gave up after ${elapsed.toFixed(0)} ms`);
    // The request did reach the server over TLS: it is the answer that never came.
    assert.equal(silent.heads.length, 1);
    assert.match(silent.heads[0]!, /^GET \/api\/v1\/namespaces\/demo\/pods\/web-0\/portforward HTTP\/1\.1\r\n/);
    assert.match(silent.heads[0]!, /^Sec-WebSocket-Protocol: SPDY\/3\.1\+portforward\.k8s\.io$/im);
    assert.equal(client.health.state, 'unreachable');
    assert.match(client.health.unreachableError().message, new RegExp(`^cannot reach the API server https://127\\.0\\.0\\.1:${silent.port} of context "[^"]+": .*in 1 s — check that the cluster is up`));
    // The abandoned attempt does not leave its connection open on the server.
    const deadline = Date.now() + 5000;
    while (silent.open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(silent.open.size, 0, 'the timed-out upgrade left its connection open');
  });

  test('auto does not try SPDY after a timeout: the server did not answer at all, SPDY would wait the same', async () => {
    const silent = await fakeServer({});
    servers.push(silent);
    const client = await clientAt(silent.port);
    const { selector, attempts } = countingSelector();
    await assert.rejects(selector.open(client, { namespace: 'demo', pod: 'web-0', timeoutMs: DEADLINE_MS }), expectCode('TIMEOUT'));
    assert.deepEqual(attempts, { spdy: 0, websocket: 1 });
    assert.equal(client.health.state, 'unreachable');
  });

  test('a pool with its upgrade deadline gives up on a silent server (the default is UPGRADE_TIMEOUT_MS)', async () => {
    const silent = await fakeServer({});
    servers.push(silent);
    const client = await clientAt(silent.port);
    const pool = new TunnelPool(client, { transport: 'websocket', upgradeTimeoutMs: DEADLINE_MS });
    try {
      const started = performance.now();
      await assert.rejects(pool.open('demo', 'web-0', 8080), expectCode('TIMEOUT'));
      assert.ok(performance.now() - started < DEADLINE_MS + 5000);
    } finally {
      pool.close();
    }
  });

  test('a refused connection: API_UNREACHABLE in the one line naming the server, and the server marked unreachable', async () => {
    const closed = net.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const client = await clientAt(port);
    await assert.rejects(
      upgradeToWebSocketTunnel(client, { namespace: 'demo', pod: 'web-0', timeoutMs: DEADLINE_MS * 10 }),
      expectCode('API_UNREACHABLE', new RegExp(`^cannot reach the API server https://127\\.0\\.0\\.1:${port} of context "[^"]+": .*ECONNREFUSED.* — check that the cluster is up`)),
    );
    assert.equal(client.health.state, 'unreachable');
  });

  test('credentials refused after the refresh: UNAUTHORIZED, and the API server marked unauthorized (not unreachable)', async () => {
    const sim = new URL(t.cluster.url);
    const client = await clientAt(Number(sim.port), (yaml) => yaml.replace(/^(\s+token:).*$/m, '$1 "not-a-valid-token"'));
    await assert.rejects(upgradeToWebSocketTunnel(client, { namespace: 'demo', pod: 'web-0' }), expectCode('UNAUTHORIZED', /log in again/));
    assert.equal(client.health.state, 'unauthorized');
    assert.equal(client.health.unreachable, false);
  });

  for (const { name, answer, message } of ANSWERS) {
    test(`${name}: UPGRADE_FAILED, and the API server counts as answering`, async () => {
      const gateway = await fakeServer({ webSocket: answer, upstream: new URL(t.cluster.url) });
      servers.push(gateway);
      const client = await clientAt(gateway.port);
      await assert.rejects(upgradeToWebSocketTunnel(client, { namespace: 'demo', pod: 'web-0', timeoutMs: DEADLINE_MS * 10 }), expectCode('UPGRADE_FAILED', message));
      assert.equal(client.health.state, 'ok');
    });
  }

  test('auto behind a gateway that answers the WebSocket GET with another subprotocol: SPDY once for the cluster, then SPDY straight away', async () => {
    const gateway = await fakeServer({ webSocket: ANSWERS[0]!.answer, upstream: new URL(t.cluster.url) });
    servers.push(gateway);
    const client = await clientAt(gateway.port);
    const before = t.cluster.counters().tunnels;
    const pool = new TunnelPool(client, { transport: 'auto' });
    try {
      for (const pod of ['web-0', 'web-1', 'web-2']) {
        const pair = await pool.open('demo', pod, 8080);
        assert.match((await exchangeToEnd(pair, HTTP_GET(`/via-gateway-${pod}`))).toString(), new RegExp(`pod ${pod} path /via-gateway-${pod}`));
      }
      assert.deepEqual(pool.stats().transports, { spdy: 3, websocket: 0 });
    } finally {
      pool.close();
    }
    const webSocketGets = gateway.heads.filter((h) => /^upgrade:\s*websocket\s*$/im.test(h));
    assert.equal(webSocketGets.length, 1, `WebSocket attempts: ${webSocketGets.length} (the failure was not remembered)`);
    const now = t.cluster.counters().tunnels;
    assert.equal(now['SPDY/3.1'] - before['SPDY/3.1'], 3, JSON.stringify(now));
    assert.equal(now['SPDY/3.1+portforward.k8s.io'], before['SPDY/3.1+portforward.k8s.io'], 'a WebSocket tunnel got past the gateway');
    assert.equal(client.health.state, 'ok');
  });
});
