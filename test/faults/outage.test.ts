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
import { lookup } from 'node:dns/promises';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { runInNewContext } from 'node:vm';
import { createDialer, type Dialer, type DialerOptions } from '../../src/dialer/dialer.js';
import { PING_TIMEOUT_MS } from '../../src/net/timeouts.js';
import { FAILURE_REPLIES } from '../../src/proxy/replies.js';
import { createProxyServer, type ProxyServer } from '../../src/proxy/server.js';
import { SimCluster } from '../../src/sim/cluster.js';
import type { Scenario } from '../../src/sim/types.js';
import { httpViaProxy, ms, NS, readyPod, startRig, summarize, waitUntil, type Rig } from '../helpers/faults-rig.js';
import { startTestCluster, type TestCluster } from '../helpers/sim.js';
import { startSimChild, type SimChild } from '../helpers/sim-child.js';
import { socksClientReply } from '../helpers/socks-client.js';
import { TEST_TRANSPORT } from '../helpers/transport.js';

/** A user with a fixed token, so a cluster started again on the same port accepts the same kubeconfig. */
const OPS = { name: 'ops', token: 'outage-ops-token' };

const scenario: Scenario = {
  namespaces: [NS, 'dev', 'com'],
  users: [OPS],
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
async function outsideServer(address = '127.0.0.1'): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => res.end('outside ok\n'));
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
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

/** Names only the cluster can answer, by their form alone. */
const CLUSTER_FORMS = [`web.${NS}.svc.cluster.local`, `web.${NS}.svc`, `db-0.db.${NS}.svc.cluster.local`, `10-244-1-10.${NS}.pod.cluster.local`];
/** Names that are cluster names only if the cluster says so (`x.NS`, `pod.svc.NS`): with nothing known, DNS is asked too. */
const AMBIGUOUS_FORMS = [`web.${NS}`, `db-0.db.${NS}`];

/** What a client is told for API_UNREACHABLE. */
const UNREACHABLE = FAILURE_REPLIES.API_UNREACHABLE;

function escaped(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** The one line a cluster name fails with while `server` cannot be reached. */
function unreachableLine(server: string): RegExp {
  return new RegExp(`cannot reach the API server ${escaped(server)} of context "kubesocks-sim".* — check that the cluster is up and your network/VPN`);
}

/**
 * Asks for `host` through HTTP and SOCKS5 and asserts the API-unreachable
 * failure: its HTTP status and SOCKS5 reply, one line naming `server`, and
 * (for a name that could be an outside one) that DNS does not have it either.
 * Returns the slower of the two times.
 */
async function assertUnreachable(proxyPort: number, host: string, server: string, boundMs: number): Promise<number> {
  const { value: res, ms: httpMs } = await timed(() => httpViaProxy(proxyPort, `http://${host}/`, boundMs + 5000));
  assert.equal(res.status, UNREACHABLE.http, `${host}: ${res.status} ${res.body}`);
  assert.equal(res.body.trim().split('\n').length, 1, `${host}: one line`);
  assert.match(res.body, unreachableLine(server), host);
  if (AMBIGUOUS_FORMS.includes(host)) assert.match(res.body, new RegExp(`^${escaped(host)} is not in DNS \\(ENOTFOUND\\) and could not be checked against the cluster: cannot reach`), host);
  assert.ok(httpMs < boundMs, `${host} took ${ms(httpMs)}`);
  const { value: reply, ms: socksMs } = await timed(() => socksClientReply(proxyPort, host, 80));
  assert.equal(reply, UNREACHABLE.socks5, `${host}: SOCKS5 reply ${reply}`);
  assert.ok(socksMs < boundMs, `${host} (SOCKS5) took ${ms(socksMs)}`);
  return Math.max(httpMs, socksMs);
}

/** The PAC's FindProxyForURL, evaluated as a browser would with the helpers it uses. */
function loadPac(text: string): (host: string) => string {
  const sandbox: Record<string, unknown> = {
    dnsDomainIs: (host: string, domain: string) => host.length >= domain.length && host.endsWith(domain),
    shExpMatch: (str: string, glob: string) => new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test(str),
  };
  runInNewContext(text, sandbox, { timeout: 1000 });
  const find = sandbox.FindProxyForURL as (url: string, host: string) => string;
  return (host) => find(`http://${host}/`, host);
}

/** The machine's own name, when DNS has it: an outside host reached by a name that could be a cluster name (a single label). */
async function resolvableLocalName(): Promise<{ name: string; address: string } | null> {
  const name = hostname().toLowerCase();
  if (!/^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(name)) return null;
  try {
    return { name, address: (await lookup(name)).address };
  } catch {
    return null;
  }
}

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

  async function proxyAgainst(kubeconfig: string, options: Partial<DialerOptions> = {}): Promise<{ port: number; dialer: Dialer }> {
    const dialer = await createDialer({ kubeconfig, ...options });
    const proxy = createProxyServer({ connector: dialer.connector() });
    proxies.push({ proxy, dialer });
    return { port: (await proxy.listen('127.0.0.1', 0)).port, dialer };
  }

  test('refused: outside hosts work, every cluster name fails in under 2 s with one line naming the server', async (tc) => {
    const apiPort = await closedPort();
    const { port } = await proxyAgainst(await kubeconfigAt(t, apiPort, 'refused'));
    const server = `https://127.0.0.1:${apiPort}`;
    const outsideHosts = ['localhost', '127.0.0.1'];
    for (const host of outsideHosts) {
      const res = await httpViaProxy(port, `http://${host}:${outside.port}/`);
      assert.equal(res.status, 200, `${host}: ${res.body}`);
    }
    // A single label could be a service in the default namespace: with nothing known, DNS decides.
    const local = await resolvableLocalName();
    if (local) {
      const server = await outsideServer(local.address);
      try {
        const { value: res, ms: took } = await timed(() => httpViaProxy(port, `http://${local.name}:${server.port}/`));
        assert.equal(res.status, 200, `${local.name}: ${res.body}`);
        assert.ok(took < 2000, `${local.name} took ${ms(took)}`);
        outsideHosts.push(`${local.name} (this machine's name)`);
      } finally {
        await server.close();
      }
    } else {
      tc.diagnostic(`this machine's name ${hostname()} is not in DNS: the outside host by a single label is not tried here`);
    }
    const failures: string[] = [];
    for (const host of [...CLUSTER_FORMS, ...AMBIGUOUS_FORMS]) failures.push(`${host} ${ms(await assertUnreachable(port, host, server, 2000))}`);
    const healthz = await ownPage(port, '/healthz');
    const readyz = await ownPage(port, '/readyz');
    const { value: pac, ms: pacMs } = await timed(() => ownPage(port, '/proxy.pac'));
    assert.equal(healthz.status, 200);
    assert.equal(readyz.status, 503);
    assert.match(readyz.body, /^kubesocks-sim: cannot reach the API server https:\/\/127\.0\.0\.1:\d+ of context/);
    assert.equal(pac.status, 200);
    assert.ok(pacMs < 300, `the PAC took ${ms(pacMs)}`);
    const line = (await httpViaProxy(port, `http://web.${NS}/`)).body.trim();
    summarize(tc, {
      case: 'API server refused (fresh proxy)',
      saw: `outside hosts (${outsideHosts.join(', ')}) 200; cluster names 502 / SOCKS5 reply ${UNREACHABLE.socks5}, slowest of HTTP and SOCKS5: ${failures.join(', ')}; e.g. "${line}"; /healthz 200, /readyz 503, /proxy.pac in ${ms(pacMs)}`,
      lost: 'nothing outside the cluster',
      recovery: '—',
    });
  });

  test('frozen (accepts, never answers): an outside host works at once, every cluster name fails within the connect timeout', async (tc) => {
    const CONNECT_TIMEOUT_MS = 5000;
    const { port } = await proxyAgainst(await kubeconfigAt(t, hole.port, 'frozen'), { connectTimeoutMs: CONNECT_TIMEOUT_MS });
    const server = `https://127.0.0.1:${hole.port}`;
    const { value: res, ms: outsideMs } = await timed(() => httpViaProxy(port, `http://localhost:${outside.port}/`));
    assert.equal(res.status, 200);
    assert.ok(outsideMs < 1000, `outside host took ${ms(outsideMs)}`);
    // Nothing known yet: the PAC answers at once with the forms that need no list.
    const { value: pac, ms: pacMs } = await timed(() => ownPage(port, '/proxy.pac'));
    assert.equal(pac.status, 200);
    assert.ok(pacMs < 300, `the PAC took ${ms(pacMs)}`);
    const find = loadPac(pac.body);
    for (const host of [`web.${NS}.svc`, `web.${NS}.svc.cluster.local`, `web.${NS}.kubesocks-sim`]) assert.match(find(host), /^PROXY 127\.0\.0\.1:\d+; SOCKS5 /, host);
    assert.equal(find('example.com'), 'DIRECT');
    const failures: string[] = [];
    for (const host of [...CLUSTER_FORMS, ...AMBIGUOUS_FORMS]) failures.push(`${host} ${ms(await assertUnreachable(port, host, server, CONNECT_TIMEOUT_MS))}`);
    const { value: ip, ms: ipMs } = await timed(() => httpViaProxy(port, `http://127.0.0.1:${outside.port}/`));
    assert.equal(ip.status, 200);
    const readyz = await ownPage(port, '/readyz');
    assert.equal(readyz.status, 503);
    summarize(tc, {
      case: 'API server frozen (fresh proxy)',
      saw: `outside host by name 200 in ${ms(outsideMs)}, by IP in ${ms(ipMs)}; /proxy.pac (nothing known: .svc, cluster domain, alias) in ${ms(pacMs)}; cluster names 502 / SOCKS5 ${UNREACHABLE.socks5} within the ${CONNECT_TIMEOUT_MS / 1000} s connect timeout: ${failures.join(', ')}; /readyz 503`,
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

describe('the API server goes away and comes back', () => {
  /** A proxy in front of a dialer on `kubeconfig`, closed with the test. */
  async function proxyFor(tc: TestContext, kubeconfig: string, options: Partial<DialerOptions> = {}): Promise<number> {
    const dialer = await createDialer({ kubeconfig, transport: TEST_TRANSPORT, ...options });
    const proxy = createProxyServer({ connector: dialer.connector() });
    tc.after(async () => {
      await proxy.close();
      await dialer.close();
    });
    return (await proxy.listen('127.0.0.1', 0)).port;
  }

  /** Polls `web.NS` through the proxy (and an outside host each time) until the cluster answers; the time it took and how the outside host fared. */
  async function untilClusterAnswers(proxyPort: number, outsidePort: number, limitMs: number): Promise<{ ms: number; outsideOk: number; outsideTried: number }> {
    const started = performance.now();
    let outsideOk = 0;
    let outsideTried = 0;
    for (;;) {
      const res = await httpViaProxy(proxyPort, `http://web.${NS}/`);
      if (res.status === 200) return { ms: performance.now() - started, outsideOk, outsideTried };
      assert.ok(performance.now() - started < limitMs, `web.${NS} still fails after ${ms(limitMs)}: ${res.status} ${res.body}`);
      outsideTried++;
      if ((await httpViaProxy(proxyPort, `http://localhost:${outsidePort}/`)).status === 200) outsideOk++;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  test('stopped, then started again on the same port: cluster names work again without restarting kubesocks', async (tc) => {
    const t = await startTestCluster(scenario);
    const outside = await outsideServer();
    let back: SimCluster | undefined;
    tc.after(async () => {
      await back?.close();
      await outside.close();
      await t.close();
    });
    const port = await proxyFor(tc, await t.kubeconfigFor(OPS.name));
    const server = t.cluster.url;
    const apiPort = Number(new URL(server).port);
    assert.equal((await httpViaProxy(port, `http://web.${NS}/`)).status, 200);
    assert.equal((await ownPage(port, '/readyz')).status, 200);

    await t.cluster.close();
    // Down: the outside host works, cluster names fail fast with the one line, /readyz says so, the PAC keeps what it knew.
    const fails: number[] = [];
    for (let i = 0; i < 5; i++) {
      assert.equal((await httpViaProxy(port, `http://localhost:${outside.port}/`)).status, 200);
      const { value: res, ms: took } = await timed(() => httpViaProxy(port, `http://web.${NS}/`));
      assert.equal(res.status, UNREACHABLE.http, res.body);
      assert.match(res.body, unreachableLine(server));
      assert.ok(took < 2000, `web.${NS} took ${ms(took)}`);
      fails.push(took);
    }
    const downReady = await ownPage(port, '/readyz');
    assert.equal(downReady.status, 503, downReady.body);
    const { value: pac, ms: pacMs } = await timed(() => ownPage(port, '/proxy.pac'));
    assert.ok(pacMs < 300, `the PAC took ${ms(pacMs)}`);
    assert.match(loadPac(pac.body)(`web.${NS}`), /^PROXY /, 'the PAC still names the namespaces last listed');

    // Back: the same port, CA and credentials; kubesocks is not restarted.
    back = await SimCluster.start({ scenario, port: apiPort });
    const recovered = await untilClusterAnswers(port, outside.port, 30_000);
    const readyMs = await waitUntil(async () => (await ownPage(port, '/readyz')).status === 200, '/readyz 200', 10_000, 50);
    assert.equal(recovered.outsideOk, recovered.outsideTried, 'the outside host failed while the cluster came back');
    assert.equal(await socksClientReply(port, `web.${NS}`, 80), 0);
    summarize(tc, {
      case: 'API server stopped, then back on the same port',
      saw: `down: web.${NS} 502 "cannot reach the API server …" in ${ms(Math.min(...fails))}–${ms(Math.max(...fails))}, outside host 200, /readyz 503, /proxy.pac (last list) in ${ms(pacMs)}; back: web.${NS} 200 (HTTP and SOCKS5), /readyz 200`,
      lost: `nothing outside the cluster (outside host ${recovered.outsideOk}/${recovered.outsideTried} while recovering)`,
      recovery: `first 200 from the cluster ${ms(recovered.ms)} after the API server listened again; /readyz 200 ${ms(readyMs)} after that`,
    });
  });

  test('frozen (SIGSTOP) and thawed (SIGCONT): outside hosts at once, cluster names fail, then work again', async (tc) => {
    const CONNECT_TIMEOUT_MS = 5000;
    const dir = await mkdtemp(join(tmpdir(), 'kubesocks-outage-'));
    const sim: SimChild = await startSimChild(scenario, join(dir, 'kubeconfig'));
    const outside = await outsideServer();
    tc.after(async () => {
      await sim.close();
      await outside.close();
      await rm(dir, { recursive: true, force: true });
    });
    const port = await proxyFor(tc, sim.kubeconfig, { connectTimeoutMs: CONNECT_TIMEOUT_MS });
    assert.equal((await httpViaProxy(port, `http://web.${NS}/`)).status, 200);

    sim.freeze();
    const frozenAt = performance.now();
    const { value: pac, ms: pacMs } = await timed(() => ownPage(port, '/proxy.pac'));
    assert.equal(pac.status, 200);
    assert.ok(pacMs < 300, `the PAC took ${ms(pacMs)}`);
    assert.match(loadPac(pac.body)(`web.${NS}`), /^PROXY /, 'built from the last namespace list');
    const { value: out, ms: outsideMs } = await timed(() => httpViaProxy(port, `http://localhost:${outside.port}/`));
    assert.equal(out.status, 200);
    assert.ok(outsideMs < 1000, `outside host took ${ms(outsideMs)}`);
    // A name whose pod has a pooled connection: nothing asks the API server anything new, so
    // nothing learns it froze until that connection's PING goes unanswered (PING_TIMEOUT_MS);
    // then the failover's upgrade finds the server silent. It fails; it does not hang.
    const firstBound = PING_TIMEOUT_MS + CONNECT_TIMEOUT_MS + 5000;
    const { value: cluster, ms: clusterMs } = await timed(() => httpViaProxy(port, `http://web.${NS}/`, firstBound + 5000));
    assert.ok(cluster.status >= 500, `${cluster.status} ${cluster.body}`);
    assert.ok(clusterMs < firstBound, `web.${NS} took ${ms(clusterMs)}: ${cluster.status} ${cluster.body}`);
    // Once a request has gone unanswered (here /readyz's probe), every cluster name fails at once with the one line.
    const { value: readyz, ms: readyzMs } = await timed(() => ownPage(port, '/readyz'));
    assert.equal(readyz.status, 503, readyz.body);
    const againMs: number[] = [];
    for (const host of [`web.${NS}`, `web.${NS}.svc.cluster.local`, `db-0.db.${NS}`]) {
      const again = await timed(() => httpViaProxy(port, `http://${host}/`));
      assert.equal(again.value.status, UNREACHABLE.http, again.value.body);
      assert.match(again.value.body, unreachableLine(sim.url));
      assert.ok(again.ms < 2000, `${host} then took ${ms(again.ms)}`);
      againMs.push(again.ms);
    }
    const frozenMs = performance.now() - frozenAt;

    sim.thaw();
    const recovered = await untilClusterAnswers(port, outside.port, 30_000);
    const readyMs = await waitUntil(async () => (await ownPage(port, '/readyz')).status === 200, '/readyz 200', 10_000, 50);
    assert.equal(recovered.outsideOk, recovered.outsideTried);
    summarize(tc, {
      case: 'API server frozen, then thawed',
      saw: `frozen: /proxy.pac (last list) in ${ms(pacMs)}, outside host 200 in ${ms(outsideMs)}, first cluster name ${cluster.status} in ${ms(clusterMs)} ("${cluster.body.trim().slice(0, 70)}…"), /readyz 503 in ${ms(readyzMs)}, then cluster names 502 in ${ms(Math.max(...againMs))} or less; thawed after ${ms(frozenMs)}: web.${NS} 200, /readyz 200`,
      lost: 'nothing outside the cluster',
      recovery: `first 200 from the cluster ${ms(recovered.ms)} after SIGCONT; /readyz 200 ${ms(readyMs)} after that`,
    });
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
