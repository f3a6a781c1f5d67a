/**
 * The API server down (connection refused) or frozen (a black hole: it
 * accepts and never answers, as when a VPN drops), for a fresh proxy: outside
 * hosts work through the whole outage, cluster names fail fast with one line
 * naming the server, /proxy.pac answers at once, /healthz stays "alive" and
 * /readyz says what is wrong; `serve` warns at start and keeps serving.
 * Plus names that collide with the public internet (namespaces `dev` and
 * `com`) and the three-label headless form.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createDialer, type Dialer } from '../../src/dialer/dialer.js';
import { createProxyServer, type ProxyServer } from '../../src/proxy/server.js';
import type { Scenario } from '../../src/sim/types.js';
import { httpViaProxy, ms, NS, readyPod, socks5Reply, startRig, summarize, type Rig } from '../helpers/faults-rig.js';
import { startTestCluster, type TestCluster } from '../helpers/sim.js';

const scenario: Scenario = {
  namespaces: [NS, 'dev', 'com'],
  pods: [
    readyPod('web-0', '10.244.1.10', [{ name: 'http', containerPort: 8080, backend: 'http' }]),
    { ...readyPod('db-0', '10.244.1.20', [{ name: 'pg', containerPort: 5432, backend: 'http' }]), hostname: 'db-0', subdomain: 'db' },
    { ...readyPod('api-0', '10.244.2.10', [{ name: 'http', containerPort: 8080, backend: 'http' }]), namespace: 'dev', labels: { app: 'api' } },
  ],
  services: [
    { name: 'web', namespace: NS, selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
    { name: 'db', namespace: NS, selector: { app: 'db' }, clusterIP: 'None', ports: [{ name: 'pg', port: 5432, targetPort: 'pg' }] },
    { name: 'api', namespace: 'dev', selector: { app: 'api' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
  ],
};

/** A local web server standing for "the rest of the internet". */
async function outsideServer(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => res.end('outside ok\n'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A TCP listener that accepts and never answers: the frozen API server. */
async function blackHole(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.pause();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port where nothing listens. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The simulator's kubeconfig pointed at another API server port. */
async function kubeconfigAt(t: TestCluster, port: number, name: string): Promise<string> {
  const text = await readFile(t.kubeconfig, 'utf8');
  const file = join(t.dir, `kubeconfig-${name}`);
  await writeFile(file, text.replace(/server: "?https:\/\/127\.0\.0\.1:\d+"?/, `server: "https://127.0.0.1:${port}"`));
  return file;
}

async function timed<T>(f: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await f();
  return { value, ms: performance.now() - started };
}

async function ownPage(proxyPort: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: proxyPort, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).once('error', reject);
  });
}

const CLUSTER_FORMS = [`web.${NS}.svc.cluster.local`, `web.${NS}.svc`, `db-0.db.${NS}.svc.cluster.local`, `10-244-1-10.${NS}.pod.cluster.local`];

describe('the API server is unreachable', () => {
  let t: TestCluster;
  let outside: { port: number; close(): Promise<void> };
  let hole: { port: number; close(): Promise<void> };
  const proxies: Array<{ proxy: ProxyServer; dialer: Dialer }> = [];

  before(async () => {
    t = await startTestCluster(scenario);
    outside = await outsideServer();
    hole = await blackHole();
  });
  after(async () => {
    for (const { proxy, dialer } of proxies) {
      await proxy.close();
      await dialer.close();
    }
    await hole.close();
    await outside.close();
    await t.close();
  });

  async function proxyAgainst(kubeconfig: string, connectTimeoutMs?: number): Promise<{ port: number; dialer: Dialer }> {
    const dialer = await createDialer({ kubeconfig, ...(connectTimeoutMs ? { connectTimeoutMs } : {}) });
    const proxy = createProxyServer({ connector: dialer.connector() });
    proxies.push({ proxy, dialer });
    return { port: (await proxy.listen('127.0.0.1', 0)).port, dialer };
  }

  test('refused: outside hosts work, every cluster form fails in under 2 s with one line naming the server', async (tc) => {
    const apiPort = await closedPort();
    const { port } = await proxyAgainst(await kubeconfigAt(t, apiPort, 'refused'));
    const server = `https://127.0.0.1:${apiPort}`;
    for (const host of ['localhost', '127.0.0.1']) {
      const res = await httpViaProxy(port, `http://${host}:${outside.port}/`);
      assert.equal(res.status, 200, `${host}: ${res.body}`);
    }
    const failures: string[] = [];
    for (const host of CLUSTER_FORMS) {
      const { value: res, ms: took } = await timed(() => httpViaProxy(port, `http://${host}/`));
      assert.equal(res.status, 502, `${host}: ${res.status} ${res.body}`);
      assert.equal(res.body.trim().split('\n').length, 1, 'one line');
      assert.match(res.body, new RegExp(`cannot reach the API server ${server.replace(/[.:/]/g, '\\$&')} of context .*check that the cluster is up`), host);
      assert.ok(took < 2000, `${host} took ${ms(took)}`);
      const { value: reply, ms: socksMs } = await timed(() => socks5Reply(port, host, 80));
      assert.notEqual(reply, 'Granted');
      assert.ok(socksMs < 2000, `${host} (SOCKS5) took ${ms(socksMs)}`);
      failures.push(`${host} ${ms(took)}`);
    }
    const healthz = await ownPage(port, '/healthz');
    const readyz = await ownPage(port, '/readyz');
    const { value: pac, ms: pacMs } = await timed(() => ownPage(port, '/proxy.pac'));
    assert.equal(healthz.status, 200);
    assert.equal(readyz.status, 503);
    assert.match(readyz.body, /^kubesocks-sim: cannot reach the API server https:\/\/127\.0\.0\.1:\d+ of context/);
    assert.equal(pac.status, 200);
    assert.ok(pacMs < 1500, `the PAC took ${ms(pacMs)}`);
    summarize(tc, {
      case: 'API server refused (fresh proxy)',
      saw: `outside hosts 200; cluster names 502 / SOCKS5 failure with "${readyz.body.trim().replace(/^kubesocks-sim: /, '').slice(0, 90)}…" in ${failures.join(', ')}; /healthz 200, /readyz 503, /proxy.pac in ${ms(pacMs)}`,
      lost: 'nothing outside the cluster',
      recovery: '—',
    });
  });

  test('frozen (accepts, never answers): an outside host works at once, a cluster name fails within the connect timeout', async (tc) => {
    const CONNECT_TIMEOUT_MS = 5000;
    const { port } = await proxyAgainst(await kubeconfigAt(t, hole.port, 'frozen'), CONNECT_TIMEOUT_MS);
    const { value: res, ms: outsideMs } = await timed(() => httpViaProxy(port, `http://localhost:${outside.port}/`));
    assert.equal(res.status, 200);
    assert.ok(outsideMs < 1000, `outside host took ${ms(outsideMs)}`);
    const { value: pac, ms: pacMs } = await timed(() => ownPage(port, '/proxy.pac'));
    assert.equal(pac.status, 200);
    assert.ok(pacMs < 1500, `the PAC took ${ms(pacMs)}`);
    const { value: cluster, ms: clusterMs } = await timed(() => httpViaProxy(port, `http://web.${NS}.svc.cluster.local/`, CONNECT_TIMEOUT_MS + 5000));
    assert.ok(cluster.status >= 500, `${cluster.status} ${cluster.body}`);
    assert.ok(clusterMs < CONNECT_TIMEOUT_MS + 500, `the cluster name took ${ms(clusterMs)}`);
    const { value: ip, ms: ipMs } = await timed(() => httpViaProxy(port, `http://127.0.0.1:${outside.port}/`));
    assert.equal(ip.status, 200);
    const readyz = await ownPage(port, '/readyz');
    assert.equal(readyz.status, 503);
    summarize(tc, {
      case: 'API server frozen (fresh proxy)',
      saw: `outside host by name 200 in ${ms(outsideMs)}, by IP in ${ms(ipMs)}; /proxy.pac in ${ms(pacMs)}; cluster FQDN ${cluster.status} in ${ms(clusterMs)} ("${cluster.body.trim().slice(0, 80)}…"; connect timeout ${CONNECT_TIMEOUT_MS / 1000} s); /readyz 503`,
      lost: 'nothing outside the cluster',
      recovery: '—',
    });
  });

  test('`serve` against a refused API server warns once at start and keeps serving', async () => {
    const apiPort = await closedPort();
    const kubeconfig = await kubeconfigAt(t, apiPort, 'serve-refused');
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '--kubeconfig', kubeconfig, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      let stderr = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (c: string) => (stderr += c));
      const deadline = Date.now() + 20_000;
      while (!/warning: /.test(stderr) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.match(stderr, /listening on 127\.0\.0\.1:(\d+)/);
      assert.match(stderr, new RegExp(`kubesocks: warning: cannot reach the API server https://127\\.0\\.0\\.1:${apiPort} of context .* \\(kubesocks keeps serving`));
      const proxyPort = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(stderr)?.[1]);
      const res = await httpViaProxy(proxyPort, `http://localhost:${outside.port}/`);
      assert.equal(res.status, 200);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('names shared with the public internet', () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig(scenario);
  });
  after(async () => {
    await rig?.close();
  });

  test('namespaces `dev` and `com`: x.NS reaches the cluster only for a service or pod x there', async (tc) => {
    const api = await httpViaProxy(rig.proxyPort, 'http://api.dev/');
    assert.equal(api.status, 200);
    assert.match(api.body, /^pod api-0 /);
    for (const host of ['go.dev', 'example.com', 'github.com']) {
      const resolution = await rig.resolver.resolve(host, 443);
      assert.deepEqual(resolution, { kind: 'external', host, port: 443 }, host);
    }
    const pac = await ownPage(rig.proxyPort, '/proxy.pac');
    assert.match(pac.body, /"\.faults"/);
    assert.doesNotMatch(pac.body, /"\.dev"|"\.com"/);
    assert.match(pac.body, /"api\.dev"/);
    summarize(tc, {
      case: 'namespaces dev and com',
      saw: 'api.dev (a service) 200 from the cluster; go.dev, example.com, github.com resolved outside; the PAC lists api.dev, not *.dev / *.com',
      lost: 'nothing',
      recovery: '—',
    });
  });

  test('three-label headless form pod.svc.ns is a cluster name', async () => {
    const res = await httpViaProxy(rig.proxyPort, `http://db-0.db.${NS}:5432/`);
    assert.equal(res.status, 200, res.body);
    assert.match(res.body, /^pod db-0 /);
    assert.deepEqual(await rig.resolver.resolve('www.example.org', 443), { kind: 'external', host: 'www.example.org', port: 443 });
  });
});
