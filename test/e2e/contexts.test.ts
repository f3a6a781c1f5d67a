/**
 * Several contexts through one proxy port (issue 12, "Done when"): two and
 * three simulated clusters, each its own CA, token and namespaces, in one
 * kubeconfig. Every name form of every context is reached through SOCKS5
 * (curl --socks5-hostname), HTTP CONNECT (curl -p -x), absolute-form HTTP
 * (curl -x) and the library; the answer names a pod of the right cluster.
 * Also: how alias names meet namespace names and IP literals, the proxy
 * username selector with and without --auth, and a stopped cluster or
 * refused credentials failing only their own names.
 */
import * as assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as http from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createDialer, type Dialer } from '../../src/dialer/dialer.js';
import { isKubesocksError } from '../../src/errors.js';
import { createProxyServer, type ProxyServer } from '../../src/proxy/server.js';
import type { SimCluster } from '../../src/sim/cluster.js';
import { curl } from '../helpers/e2e-procs.js';
import { SHARED_CLUSTER_IP, SHARED_POD_IP, startClusters, taggedScenario, type MultiCluster } from '../helpers/multi-cluster.js';

/** The third cluster's context has an EKS-style name: its alias is the folded name. */
const EKS_NAME = 'arn:aws:eks:eu-west-1:123456789012:cluster/Gamma_Prod';
const EKS_ALIAS = 'arn-aws-eks-eu-west-1-123456789012-cluster-gamma-prod';

interface Ctx {
  /** Kubeconfig context name. */
  name: string;
  alias: string;
  /** Pod name tag of its cluster. */
  tag: string;
}

interface Rig {
  multi: MultiCluster;
  dialer: Dialer;
  proxy: ProxyServer;
  port: number;
  records: string[];
}

async function startRig(multi: MultiCluster, options: { contexts?: string[]; allContexts?: boolean; aliases?: string[]; auth?: { username: string; password: string } }): Promise<Rig> {
  const dialer = await createDialer({
    kubeconfig: multi.kubeconfig,
    contexts: options.contexts ?? [],
    allContexts: options.allContexts ?? false,
    aliases: options.aliases ?? [],
    direct: 'deny',
    connectTimeoutMs: 8000,
  });
  const records: string[] = [];
  const proxy = createProxyServer({
    connector: dialer.connector(),
    auth: options.auth,
    onConnection: (r) => records.push(`${r.target ?? ''} ${r.via ?? ''} ${r.error ? `${r.error.code} ${r.error.message}` : 'ok'}`),
  });
  const { port } = await proxy.listen('127.0.0.1', 0);
  return { multi, dialer, proxy, port, records };
}

async function stopRig(rig: Rig | undefined): Promise<void> {
  if (!rig) return;
  await rig.proxy.close();
  await rig.dialer.close();
}

type Via = 'socks5' | 'connect' | 'absolute' | 'library';
const VIAS: readonly Via[] = ['socks5', 'connect', 'absolute', 'library'];

/** GET http://host:port/ through the proxy by `via`; the body, or throws with what failed. */
async function get(rig: Rig, via: Via, host: string, port = 80, user?: string): Promise<string> {
  const url = `http://${host}:${port}/`;
  if (via === 'library') return libraryGet(rig.dialer, host, port, user);
  const proxyUser = user === undefined ? '' : `${encodeURIComponent(user)}:x@`;
  const args =
    via === 'socks5'
      ? ['--proxy', `socks5h://${proxyUser}127.0.0.1:${rig.port}`, url]
      : via === 'connect'
        ? ['-p', '-x', `http://${proxyUser}127.0.0.1:${rig.port}`, url]
        : ['-x', `http://${proxyUser}127.0.0.1:${rig.port}`, url];
  const r = await curl(['-f', ...args]);
  if (r.code !== 0) throw new Error(`curl ${via} ${url} exited ${r.code}: ${r.stderr.trim()} | ${rig.records.at(-1) ?? ''}`);
  return r.stdout;
}

function libraryGet(dialer: Dialer, host: string, port: number, context?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = dialer.socket({ host, port, ...(context ? { context } : {}) });
    const req = http.get({ host, port, path: '/', createConnection: () => socket as never, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}: ${body}`))));
    });
    req.on('error', reject);
  });
}

/** Every form a context is reached by through its alias, with the pod that must answer. */
function aliasForms(c: Ctx): Array<[host: string, port: number, pod: string]> {
  return [
    [`web.team.${c.alias}`, 80, `web-${c.tag}-0`],
    [`web.team.svc.${c.alias}`, 80, `web-${c.tag}-0`],
    [`db-0.db.team.svc.${c.alias}`, 8080, `db-${c.tag}-0`],
    [`web-${c.tag}-0.team.${c.alias}`, 8080, `web-${c.tag}-0`],
    [`web.only-${c.tag}.${c.alias}`, 80, `web-${c.tag}-only-0`],
    [`${SHARED_POD_IP.replace(/\./g, '-')}.team.pod.${c.alias}`, 8080, `web-${c.tag}-0`],
  ];
}

/** The default context's own forms (short names, the cluster domain, IP literals). */
function defaultForms(c: Ctx): Array<[host: string, port: number, pod: string]> {
  return [
    ['web', 80, `web-${c.tag}-0`],
    ['web.team', 80, `web-${c.tag}-0`],
    ['web.team.svc', 80, `web-${c.tag}-0`],
    ['web.team.svc.cluster.local', 80, `web-${c.tag}-0`],
    ['db-0.db.team.svc.cluster.local', 8080, `db-${c.tag}-0`],
    [`web-${c.tag}-0.team`, 8080, `web-${c.tag}-0`],
    [SHARED_CLUSTER_IP, 80, `web-${c.tag}-0`],
  ];
}

for (const count of [2, 3] as const) {
  describe(`${count} simulated clusters in one kubeconfig, one proxy port`, () => {
    const ctxs: Ctx[] = [
      { name: 'alpha', alias: 'alpha', tag: 'a' },
      { name: 'gke_proj_europe-west1_beta', alias: 'beta', tag: 'b' },
      { name: EKS_NAME, alias: EKS_ALIAS, tag: 'c' },
    ].slice(0, count);
    let multi: MultiCluster;
    let rig: Rig;

    before(async () => {
      // The default cluster also has a namespace named like the second context's alias.
      multi = await startClusters(
        ctxs.map((c, i) => taggedScenario(c.tag, i === 0 ? ['beta'] : [])),
        (clusters) => ctxs.map((c, i) => ({ name: c.name, cluster: clusters[i] as SimCluster })),
      );
      rig = await startRig(multi, { contexts: ctxs.map((c) => c.name), aliases: ['beta=gke_proj_europe-west1_beta'] });
    });
    after(async () => {
      await stopRig(rig);
      await multi?.close();
    });

    test('the dialer reports one entry per context: alias, context, cluster, namespace; none started', () => {
      const infos = rig.dialer.contexts();
      assert.deepEqual(
        infos.map((i) => [i.alias, i.context, i.namespace, i.isDefault, i.started]),
        ctxs.map((c, i) => [c.alias, c.name, 'team', i === 0, false]),
      );
      assert.deepEqual(
        infos.map((i) => i.cluster),
        multi.clusters.map((c) => c.url),
      );
    });

    for (const via of VIAS) {
      test(`${via}: every alias form of every context reaches that context's cluster`, async () => {
        for (const c of ctxs) {
          for (const [host, port, pod] of aliasForms(c)) {
            const body = await get(rig, via, host, port);
            assert.equal(body, `pod ${pod} path /\n`, `${host}:${port} via ${via}`);
          }
        }
      });

      test(`${via}: the default context keeps every form it has without contexts`, async () => {
        for (const [host, port, pod] of defaultForms(ctxs[0] as Ctx)) {
          assert.equal(await get(rig, via, host, port), `pod ${pod} path /\n`, `${host}:${port} via ${via}`);
        }
      });

      test(`${via}: the proxy username (or connect's context) selects the context of short names and IP literals`, async () => {
        for (const c of ctxs) {
          for (const user of [c.alias, c.name]) {
            if (via !== 'library' && user.includes(':')) continue; // userinfo cannot carry ':' in the username
            assert.equal(await get(rig, via, 'web.team', 80, user), `pod web-${c.tag}-0 path /\n`, `web.team as ${user}`);
            assert.equal(await get(rig, via, SHARED_CLUSTER_IP, 80, user), `pod web-${c.tag}-0 path /\n`, `${SHARED_CLUSTER_IP} as ${user}`);
          }
          // A name ending in another alias still goes there: the name is explicit.
          const other = ctxs.find((o) => o !== c) as Ctx;
          assert.equal(await get(rig, via, `web.team.${other.alias}`, 80, c.alias), `pod web-${other.tag}-0 path /\n`);
        }
      });
    }

    test('a namespace named like an alias: two labels mean the namespace, three the context', async () => {
      assert.equal(await get(rig, 'absolute', 'web.beta'), 'pod web-a-in-beta-0 path /\n');
      assert.equal(await get(rig, 'socks5', 'web.beta.svc.cluster.local'), 'pod web-a-in-beta-0 path /\n');
      assert.equal(await get(rig, 'absolute', 'web.team.beta'), 'pod web-b-0 path /\n');
      // The namespace is in the default cluster only: in context beta, `web.beta` is no cluster name (as
      // `x.y` without namespace y is not), so the whole name is an outside host.
      const r = await curl(['-x', `http://127.0.0.1:${rig.port}`, 'http://web.beta.beta/']);
      assert.equal(r.stdout, 'context beta: web.beta.beta:80 is outside the cluster and direct connections are denied (--direct=deny)\n');
      // `x.ns.ALIAS` for an x that is no service or pod there goes outside too, as `x.ns` does.
      const outside = await curl(['-x', `http://127.0.0.1:${rig.port}`, 'http://nothing.team.beta/']);
      assert.equal(outside.stdout, 'context beta: nothing.team.beta:80 is outside the cluster and direct connections are denied (--direct=deny)\n');
      // The service form is a cluster name by its shape: NOT_FOUND, with a kubectl hint for that context.
      const missing = await curl(['-x', `http://127.0.0.1:${rig.port}`, 'http://nothing.team.svc.beta/']);
      assert.match(missing.stdout, /^context beta: service "nothing" not found in namespace "team" \(see kubectl --context gke_proj_europe-west1_beta get svc -n team\)/);
    });

    test('names that only end in an alias are not the context\'s: x.y.ALIAS without namespace y and a.b.c.d.ALIAS go out as they are', async () => {
      const r1 = await curl(['-x', `http://127.0.0.1:${rig.port}`, '-D', '-', 'http://www.example.beta/']);
      assert.match(r1.stdout, /X-Kubesocks-Error: DIRECT_DENIED/i);
      assert.match(r1.stdout, /www\.example\.beta:80 is outside the cluster/);
      const r2 = await curl(['-x', `http://127.0.0.1:${rig.port}`, '-D', '-', 'http://a.b.c.team.beta/']);
      assert.match(r2.stdout, /a\.b\.c\.team\.beta:80 is outside the cluster/);
    });

    test('an unknown proxy username is refused with the aliases, not served by the default cluster', async () => {
      const r = await curl(['-x', `http://nobody:x@127.0.0.1:${rig.port}`, '-D', '-', 'http://web.team/']);
      assert.match(r.stdout, /^HTTP\/1\.1 407 /);
      assert.match(r.stdout, /Proxy-Authenticate: Basic/i);
      assert.match(r.stdout, new RegExp(`proxy username "nobody" is not a context served here \\(aliases: ${ctxs.map((c) => c.alias).join(', ')}\\)`));
      const s = await curl(['--proxy', `socks5h://nobody:x@127.0.0.1:${rig.port}`, 'http://web.team/']);
      assert.notEqual(s.code, 0);
      assert.match(rig.records.at(-1) ?? '', /PROXY_AUTH proxy username "nobody"/);
      await assert.rejects(rig.dialer.connect({ context: 'nobody', host: 'web.team', port: 80 }), /no context "nobody" is served/);
      // Hostile usernames: control characters and 255 bytes come back as one short line.
      const hostile = `\r\n${'\u0000x'.repeat(120)}`;
      const rejected = await rig.dialer
        .connector()
        .connect({ host: 'web.team', port: 80, selector: hostile }, new AbortController().signal)
        .then(() => null, (e: unknown) => e);
      assert.ok(isKubesocksError(rejected) && rejected.code === 'PROXY_AUTH');
      assert.ok(!/[\r\n\u0000]/.test(rejected.message) && /^proxy username "\\r\\n[^"]{60,80}…" is not a context/.test(rejected.message), rejected.message);
    });

    test('library: connect("web.team.ALIAS:80") and connect({ context, namespace, pod, port }) in each context', async () => {
      for (const c of ctxs) {
        const socket = await rig.dialer.connect(`web.team.${c.alias}:80`);
        assert.match(socket.via, new RegExp(`^team/web-${c.tag}-0:8080@${c.alias}$`));
        socket.destroy();
        const pod = await rig.dialer.connect({ context: c.alias, namespace: 'team', pod: `web-${c.tag}-0`, port: 8080 });
        pod.end('GET / HTTP/1.0\r\n\r\n');
        let text = '';
        for await (const chunk of pod) text += String(chunk);
        assert.match(text, new RegExp(`pod web-${c.tag}-0 path /`));
        const svc = await rig.dialer.connect({ context: c.name, namespace: `only-${c.tag}`, service: 'web', port: 80 });
        assert.equal(svc.via, `only-${c.tag}/web-${c.tag}-only-0:8080@${c.alias}`);
        svc.destroy();
      }
      const infos = rig.dialer.contexts();
      assert.ok(infos.every((i) => i.started), 'every context was used by now');
    });
  });
}

describe('contexts whose API server is down, or whose credentials are refused, fail only their own names', () => {
  let multi: MultiCluster;
  let rig: Rig;
  const marker = (dir: string): string => join(dir, 'exec-ran');

  before(async () => {
    multi = await startClusters([taggedScenario('a'), taggedScenario('b'), taggedScenario('c')], (clusters, dir) => [
      { name: 'alpha', cluster: clusters[0] as SimCluster },
      { name: 'beta', cluster: clusters[1] as SimCluster },
      { name: 'gamma', cluster: clusters[2] as SimCluster },
      // Nothing listens on port 1; a token the cluster does not know; an exec plugin that leaves a trace.
      { name: 'down', cluster: clusters[1] as SimCluster, server: 'https://127.0.0.1:1' },
      { name: 'refused', cluster: clusters[1] as SimCluster, token: 'not-a-token-of-this-cluster' },
      { name: 'lazy', cluster: clusters[1] as SimCluster, execMarker: marker(dir) },
    ]);
    rig = await startRig(multi, { allContexts: true });
  });
  after(async () => {
    await stopRig(rig);
    await multi?.close();
  });

  test('--all-contexts serves every context, the current one first; the exec plugin has not run', async () => {
    assert.deepEqual(
      rig.dialer.contexts().map((c) => c.alias),
      ['alpha', 'beta', 'gamma', 'down', 'refused', 'lazy'],
    );
    assert.equal(await get(rig, 'socks5', 'web.team.alpha'), 'pod web-a-0 path /\n');
    assert.equal(await get(rig, 'socks5', 'web.team.beta'), 'pod web-b-0 path /\n');
    assert.equal(existsSync(marker(multi.dir)), false, 'no exec plugin runs before a name in its context is used');
    assert.deepEqual(
      rig.dialer.contexts().map((c) => c.started),
      [true, true, false, false, false, false],
    );
  });

  test('the lazy context runs its exec plugin on first use and then works', async () => {
    assert.equal(await get(rig, 'absolute', 'web.team.lazy'), 'pod web-b-0 path /\n');
    assert.equal(existsSync(marker(multi.dir)), true);
  });

  test('a context with no API server fails its names with a line naming it; the others keep working', async () => {
    const r = await curl(['-x', `http://127.0.0.1:${rig.port}`, '-D', '-', 'http://web.team.down/']);
    assert.match(r.stdout, /X-Kubesocks-Error: API_UNREACHABLE/i);
    assert.match(r.stdout, /^context down: /m);
    assert.ok(
      rig.records.some((l) => /^web\.team\.down:80 +API_UNREACHABLE context down: /.test(l)),
      `a record naming the context, got:\n${rig.records.join('\n')}`,
    );
    assert.equal(await get(rig, 'connect', 'web.team.gamma'), 'pod web-c-0 path /\n');
    assert.equal(await get(rig, 'connect', 'web.team'), 'pod web-a-0 path /\n');
  });

  test('a context whose credentials are refused fails its names with a line naming it', async () => {
    const r = await curl(['-x', `http://127.0.0.1:${rig.port}`, '-D', '-', 'http://web.team.refused/']);
    assert.match(r.stdout, /X-Kubesocks-Error: UNAUTHORIZED/i);
    assert.match(r.stdout, /^context refused: /m);
    assert.equal(await get(rig, 'socks5', 'web.team.beta'), 'pod web-b-0 path /\n', 'the same cluster through a good context still works');
  });

  test('a cluster stopped after use fails only its names, each failure naming its context', async () => {
    assert.equal(await get(rig, 'socks5', 'web.team.gamma'), 'pod web-c-0 path /\n');
    await (multi.clusters[2] as SimCluster).close();
    // Pooled connections may still look open for a moment: the request fails over to a new upgrade, which fails.
    const failure = await libraryGet(rig.dialer, 'web-c-0.team.gamma', 8080).then(
      (body) => body,
      (e: unknown) => e,
    );
    assert.ok(isKubesocksError(failure), `expected a failure, got ${String(failure)}`);
    assert.match(failure.message, /^context gamma: /);
    const r = await curl(['-x', `http://127.0.0.1:${rig.port}`, 'http://web.team.gamma/']);
    assert.match(r.stdout, /^context gamma: /);
    for (const via of VIAS) {
      assert.equal(await get(rig, via, 'web.team.alpha'), 'pod web-a-0 path /\n');
      assert.equal(await get(rig, via, 'web.team.beta'), 'pod web-b-0 path /\n');
      assert.equal(await get(rig, via, 'web'), 'pod web-a-0 path /\n');
    }
  });
});

describe('readiness per context (/readyz) leaves contexts not used yet alone', () => {
  let multi: MultiCluster;
  let rig: Rig;
  before(async () => {
    multi = await startClusters([taggedScenario('a'), taggedScenario('b')], (clusters, dir) => [
      { name: 'alpha', cluster: clusters[0] as SimCluster },
      { name: 'beta', cluster: clusters[1] as SimCluster },
      { name: 'down', cluster: clusters[1] as SimCluster, server: 'https://127.0.0.1:1' },
      { name: 'lazy', cluster: clusters[1] as SimCluster, execMarker: join(dir, 'exec-ran') },
    ]);
    rig = await startRig(multi, { allContexts: true });
  });
  after(async () => {
    await stopRig(rig);
    await multi?.close();
  });

  test('the default and used contexts are asked; the others are not contacted', async () => {
    await rig.dialer.connect('web.team.down:80').then((s) => s.destroy(), () => {});
    const lines = await rig.dialer.readiness();
    assert.deepEqual(
      lines.map((l) => [l.context, l.ready]),
      [
        ['alpha', true],
        ['beta', true],
        ['down', false],
        ['lazy', true],
      ],
    );
    assert.equal(lines[1]?.reason, 'not used yet (not contacted)');
    assert.match(lines[2]?.reason ?? '', /cannot reach the API server https:\/\/127\.0\.0\.1:1 of context "down"/);
    assert.equal(existsSync(join(multi.dir, 'exec-ran')), false);
    const r = await curl([`http://127.0.0.1:${rig.port}/readyz`]);
    assert.match(r.stdout, /^alpha: ok; beta: not used yet \(not contacted\); down: cannot reach/);
  });
});

describe('the proxy username with --auth: USER selects the default, USER+ALIAS a context; the password guards both', () => {
  let multi: MultiCluster;
  let rig: Rig;
  before(async () => {
    multi = await startClusters([taggedScenario('a'), taggedScenario('b')], (clusters) => [
      { name: 'alpha', cluster: clusters[0] as SimCluster },
      { name: 'beta', cluster: clusters[1] as SimCluster },
    ]);
    rig = await startRig(multi, { allContexts: true, auth: { username: 'me+team', password: 's3cret' } });
  });
  after(async () => {
    await stopRig(rig);
    await multi?.close();
  });

  const through = (via: 'socks5' | 'connect' | 'absolute', user: string, password: string): Promise<{ code: number | null; stdout: string }> => {
    const creds = `${encodeURIComponent(user)}:${encodeURIComponent(password)}@`;
    const proxy = via === 'socks5' ? `socks5h://${creds}127.0.0.1:${rig.port}` : `http://${creds}127.0.0.1:${rig.port}`;
    return curl([...(via === 'connect' ? ['-p'] : []), '-f', '--proxy', proxy, 'http://web.team/']);
  };

  for (const via of ['socks5', 'connect', 'absolute'] as const) {
    test(`${via}: me+team:s3cret → alpha, me+team+beta:s3cret → beta, wrong password or bare alias → refused`, async () => {
      assert.equal((await through(via, 'me+team', 's3cret')).stdout, 'pod web-a-0 path /\n');
      assert.equal((await through(via, 'me+team+beta', 's3cret')).stdout, 'pod web-b-0 path /\n');
      assert.equal((await through(via, 'me+team+alpha', 's3cret')).stdout, 'pod web-a-0 path /\n');
      assert.notEqual((await through(via, 'me+team+beta', 'wrong')).code, 0);
      assert.notEqual((await through(via, 'beta', 's3cret')).code, 0);
      assert.notEqual((await through(via, 'me', 's3cret')).code, 0, '"me" + selector "team" is not the configured user');
      assert.notEqual((await through(via, 'me+team+nope', 's3cret')).code, 0);
    });
  }
});
