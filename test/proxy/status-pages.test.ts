/**
 * The proxy's status pages (issue 13) over real sockets, in front of the
 * simulated demo cluster: `/status.json` shows contexts, pods and open
 * connections; `/` is a server-rendered page whose CSP allows exactly its
 * own style and script; `/metrics` passes `promtool check metrics` and its
 * counters move as connections are made; Host must name the proxy (DNS
 * rebinding); with credentials set, they are required; nothing writes;
 * hostile target names stay text; no token or key is ever shown.
 */
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import type { StatusSnapshot } from '../../src/observe/status.js';
import { roundTrip, rawSocks5Connect, readBytes, socksConnect } from '../helpers/socks-client.js';
import { NEEDS_PROMTOOL, basic, get, promtoolCheck, sample, startStatusRig, type StatusRig } from '../helpers/status.js';

const PATHS = ['/', '/status.json', '/metrics'];

async function snapshot(port: number, headers: Record<string, string> = {}): Promise<StatusSnapshot> {
  const answer = await get(port, '/status.json', headers);
  assert.equal(answer.status, 200, answer.body);
  assert.match(String(answer.headers['content-type']), /^application\/json/);
  return JSON.parse(answer.body) as StatusSnapshot;
}

/** Polls /status.json until `check` holds; the snapshot that satisfied it. */
async function snapshotWhen(port: number, check: (s: StatusSnapshot) => boolean, what: string): Promise<StatusSnapshot> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const s = await snapshot(port);
    if (check(s)) return s;
    if (Date.now() > deadline) assert.fail(`${what}: not seen in /status.json within 5 s\n${JSON.stringify(s, null, 2)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('status pages of a proxy in front of the simulated cluster', () => {
  let rig: StatusRig;
  before(async () => {
    rig = await startStatusRig();
  });
  after(() => rig?.close());

  test('/status.json: the context, an open SOCKS connection with its pod and bytes, gone once closed', async () => {
    const socket = await socksConnect(rig.port, 'echo.demo', 7);
    assert.equal((await roundTrip(socket, Buffer.from('hello'))).toString(), 'hello');
    const open = await snapshotWhen(rig.port, (s) => s.connections.some((c) => c.target === 'echo.demo:7'), 'the open connection');
    const conn = open.connections.find((c) => c.target === 'echo.demo:7');
    assert.ok(conn);
    assert.equal(conn.protocol, 'socks5');
    assert.match(conn.via, /^demo\/echo-[01]:7$/);
    assert.match(conn.pod ?? '', /^demo\/echo-[01]$/);
    assert.equal(conn.bytesUp, 5);
    assert.equal(conn.bytesDown, 5);
    assert.match(conn.client, /^127\.0\.0\.1:\d+$/);

    assert.equal(open.contexts.length, 1);
    const [context] = open.contexts;
    assert.equal(context?.name, rig.dialer.context().name);
    assert.equal(context?.server, rig.t.cluster.url.replace(/\/$/, ''));
    assert.equal(context?.user, 'admin', 'the kubeconfig user name of the simulated cluster');
    assert.equal(context?.reachable, true);
    assert.equal(context?.lastError, null);
    assert.ok(context?.namespaces.includes('demo'), `namespaces watched: ${context?.namespaces.join(', ')}`);

    const pod = open.pods.find((p) => `${p.namespace}/${p.pod}` === conn.pod);
    assert.ok(pod, `a pod row for ${conn.pod}`);
    assert.equal(pod.context, context?.name);
    // The simulator has port-forward over WebSockets: `auto` takes it.
    assert.match(String(pod.transport), /^(spdy|websocket)$/);
    assert.ok(pod.connections >= 1 && pod.socketsOpen >= 1, JSON.stringify(pod));
    assert.ok(pod.ageMs !== null && pod.ageMs >= 0);
    assert.equal(open.totals.open, open.connections.length);
    assert.equal(open.auth, false);
    assert.equal(open.listen, `127.0.0.1:${rig.port}`);

    socket.end();
    await once(socket, 'close');
    const closed = await snapshotWhen(rig.port, (s) => !s.connections.some((c) => c.id === conn.id), 'the connection gone');
    assert.ok(closed.totals.bytesUp >= 5 && closed.totals.bytesDown >= 5);
    const after = closed.pods.find((p) => `${p.namespace}/${p.pod}` === conn.pod);
    assert.ok(after && after.bytesUp >= 5 && after.socketsTotal >= 1, JSON.stringify(after));
  });

  test('a refused pod port is a failure with time, target, code and a one-line reason, and the pod shows it', async () => {
    const { rep } = await rawSocks5Connect(rig.port, 'web-0.demo', 9090);
    assert.equal(rep, 5, 'connection refused');
    const s = await snapshotWhen(rig.port, (x) => x.failures.some((f) => f.target === 'web-0.demo:9090'), 'the failure');
    const failure = s.failures.find((f) => f.target === 'web-0.demo:9090');
    assert.equal(failure?.code, 'POD_REFUSED');
    assert.equal(failure?.protocol, 'socks5');
    assert.doesNotMatch(failure?.message ?? '\n', /\n/);
    assert.ok(Math.abs(Date.parse(failure?.time ?? '') - Date.now()) < 60_000);
    assert.equal(s.pods.find((p) => p.pod === 'web-0')?.lastError?.code, 'POD_REFUSED');
    assert.ok(s.totals.failed >= 1);
  });

  test('/ is rendered on the server (rows without JavaScript) with a CSP that allows only its own style and script', async () => {
    const socket = await socksConnect(rig.port, 'echo.demo', 7);
    try {
      await roundTrip(socket, Buffer.from('x'));
      await snapshotWhen(rig.port, (s) => s.connections.some((c) => c.target === 'echo.demo:7'), 'the open connection');
      const page = await get(rig.port, '/');
      assert.equal(page.status, 200);
      assert.match(String(page.headers['content-type']), /^text\/html; charset=utf-8/);
      assert.match(page.body, /<table data-table="contexts"[^]*<td>kubesocks-sim<\/td>/);
      assert.match(page.body, /<table data-table="connections"[^]*<td>echo\.demo:7<\/td><td>demo\/echo-[01]:7<\/td>/);
      assert.match(page.body, /<table data-table="pods"[^]*<td>demo<\/td><td>echo-[01]<\/td>/);

      const csp = String(page.headers['content-security-policy']);
      const directives = new Map(csp.split(/;\s*/).map((d) => [d.split(' ')[0], d.split(' ').slice(1).join(' ')] as const));
      assert.equal(directives.get('default-src'), "'none'");
      assert.equal(directives.get('connect-src'), "'self'");
      assert.equal(directives.get('frame-ancestors'), "'none'");
      const hash = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
      const scripts = [...page.body.matchAll(/<script>([^]*?)<\/script>/g)].map((m) => m[1] ?? '');
      const styles = [...page.body.matchAll(/<style>([^]*?)<\/style>/g)].map((m) => m[1] ?? '');
      assert.equal(scripts.length, 1);
      assert.equal(styles.length, 1);
      assert.equal(directives.get('script-src'), hash(scripts[0] ?? ''), 'the script is allowed by its hash and nothing else');
      assert.equal(directives.get('style-src'), hash(styles[0] ?? ''));
      // No inline handlers, no external assets.
      assert.doesNotMatch(page.body, /\son[a-z]+\s*=/i);
      assert.doesNotMatch(page.body, /(?:src|href)="(?:https?:)?\/\//i);
      assert.equal(page.headers['x-content-type-options'], 'nosniff');
      assert.equal(page.headers['cache-control'], 'no-store');
    } finally {
      socket.destroy();
    }
  });

  test('/metrics passes promtool check metrics, and its counters move as connections are made', NEEDS_PROMTOOL, async () => {
    // Connections of earlier cases have ended (they count when they end).
    await snapshotWhen(rig.port, (s) => s.connections.length === 0, 'no connection open');
    const before = await get(rig.port, '/metrics');
    assert.equal(before.status, 200);
    assert.equal(before.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    const lint = await promtoolCheck(before.body);
    assert.equal(lint.code, 0, lint.output);
    assert.equal(lint.output, '', 'no lint findings');
    assert.match(before.body, /^kubesocks_build_info\{version="\d+\.\d+\.\d+[^"]*",transport="(auto|spdy|websocket)",nodejs="[\d.]+"\} 1$/m);

    const ok = 'kubesocks_connections_total{protocol="socks5",result="ok"}';
    const failed = 'kubesocks_connections_total{protocol="socks5",result="error"}';
    const refused = 'kubesocks_errors_total{code="POD_REFUSED"}';
    const up = 'kubesocks_proxied_bytes_total{direction="up"}';
    const down = 'kubesocks_proxied_bytes_total{direction="down"}';
    const connects = 'kubesocks_connect_duration_seconds_count{result="ok"}';

    const socket = await socksConnect(rig.port, 'echo.demo', 7);
    await roundTrip(socket, Buffer.alloc(1000, 7));
    // While open: its bytes count already, and it is open.
    const during = (await get(rig.port, '/metrics')).body;
    assert.ok(sample(during, up) >= sample(before.body, up) + 1000, 'bytes up count while the connection is open');
    assert.ok(sample(during, 'kubesocks_connections_open{protocol="socks5"}') >= 1);
    // The simulator has port-forward over WebSockets: `auto` takes it.
    assert.ok(sample(during, 'kubesocks_pool_connections_open{transport="spdy"}') + sample(during, 'kubesocks_pool_connections_open{transport="websocket"}') >= 1);
    assert.ok(sample(during, 'kubesocks_pool_sockets_open') >= 1);
    socket.end();
    await once(socket, 'close');
    assert.equal((await rawSocks5Connect(rig.port, 'web-0.demo', 9090)).rep, 5);

    let afterText = '';
    const deadline = Date.now() + 5000;
    for (;;) {
      afterText = (await get(rig.port, '/metrics')).body;
      if (sample(afterText, ok) >= sample(before.body, ok) + 1 && sample(afterText, failed) >= sample(before.body, failed) + 1) break;
      if (Date.now() > deadline) assert.fail(`counters did not move:\n${afterText}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(sample(afterText, ok), sample(before.body, ok) + 1);
    assert.equal(sample(afterText, failed), sample(before.body, failed) + 1);
    assert.equal(sample(afterText, refused), sample(before.body, refused) + 1);
    assert.ok(sample(afterText, up) >= sample(before.body, up) + 1000);
    assert.ok(sample(afterText, down) >= sample(before.body, down) + 1000);
    assert.ok(sample(afterText, connects) >= sample(before.body, connects) + 1);
    assert.ok(sample(afterText, 'kubesocks_upgrades_total{transport="spdy",result="ok"}') + sample(afterText, 'kubesocks_upgrades_total{transport="websocket",result="ok"}') >= 1);
    const lintAfter = await promtoolCheck(afterText);
    assert.equal(lintAfter.code, 0, lintAfter.output);
  });

  test('failovers and watch relists are counted (a refusing pod; an expired watch history)', NEEDS_PROMTOOL, async () => {
    const metric = async (series: string): Promise<number> => sample((await get(rig.port, '/metrics')).body, series);
    // A service over a pod that refuses and one that echoes: a socket sent to the refusing one moves on.
    const pod = (name: string, ip: string, backend: 'closed' | 'echo') => ({ name, namespace: 'demo', labels: { app: 'flaky' }, ip, ports: [{ name: 'p', containerPort: 7000, backend }] });
    rig.t.cluster.addPod(pod('flaky-0', '10.244.0.60', 'closed'));
    rig.t.cluster.addPod(pod('flaky-1', '10.244.0.61', 'echo'));
    rig.t.cluster.addService({ name: 'flaky', namespace: 'demo', clusterIP: '10.96.100.60', selector: { app: 'flaky' }, ports: [{ name: 'p', port: 7000, targetPort: 'p' }] });
    const failoversBefore = await metric('kubesocks_failovers_total');
    for (let i = 0; i < 4; i++) {
      const socket = await socksConnect(rig.port, 'flaky.demo', 7000);
      assert.equal((await roundTrip(socket, Buffer.from(`n${i}`))).toString(), `n${i}`, 'every connection reaches the echoing pod');
      socket.destroy();
    }
    assert.ok((await metric('kubesocks_failovers_total')) >= failoversBefore + 1, 'the refusing pod was tried and left at least once');
    const s = await snapshot(rig.port);
    assert.equal(s.pods.find((p) => p.pod === 'flaky-0')?.lastError?.code, 'POD_REFUSED');

    const relistsBefore = await metric('kubesocks_watch_relists_total');
    rig.t.cluster.compactHistory();
    rig.t.cluster.cutWatches();
    const deadline = Date.now() + 10_000;
    while ((await metric('kubesocks_watch_relists_total')) <= relistsBefore) {
      if (Date.now() > deadline) assert.fail('no relist counted after the watch history expired');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal((await snapshot(rig.port)).contexts[0]?.reachable, true, 'a relist is the API server answering');
  });

  for (const path of PATHS) {
    test(`${path}: answered only when Host names the proxy (DNS rebinding is refused)`, async () => {
      for (const host of [`127.0.0.1:${rig.port}`, `localhost:${rig.port}`, `[::1]:${rig.port}`]) {
        assert.equal((await get(rig.port, path, { Host: host })).status, 200, host);
      }
      for (const host of [`evil.example:${rig.port}`, `127.0.0.1.nip.io:${rig.port}`, `localhost.evil.example:${rig.port}`, 'a b']) {
        const answer = await get(rig.port, path, { Host: host });
        assert.equal(answer.status, 403, `Host ${host}`);
        assert.doesNotMatch(answer.body, /kubesocks_|"contexts"|<table/, 'nothing of the status leaks');
      }
    });
  }

  test('a request without Host (HTTP/1.0) is refused', async () => {
    const socket = connect(rig.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('GET /status.json HTTP/1.0\r\n\r\n');
    const head = (await readBytes(socket, 12)).toString();
    socket.destroy();
    assert.equal(head, 'HTTP/1.1 403');
  });

  test('the pages are read-only: other methods get 405', async () => {
    for (const path of PATHS) {
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
        const answer = await get(rig.port, path, { 'Content-Length': '0' }, method);
        assert.equal(answer.status, 405, `${method} ${path}`);
        assert.equal(answer.headers.allow, 'GET, HEAD');
      }
    }
    const head = await get(rig.port, '/status.json', {}, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  });

  test('a hostile target name is shown as text, never as markup', async () => {
    const hostile = '<img src=x onerror=alert(1)>.demo';
    const { rep } = await rawSocks5Connect(rig.port, hostile, 80);
    assert.notEqual(rep, 0);
    // The SOCKS front refuses the name (BAD_TARGET) and its message quotes it.
    await snapshotWhen(rig.port, (s) => s.failures.some((f) => f.message.includes(hostile)), 'the hostile failure');
    const page = await get(rig.port, '/');
    assert.ok(!page.body.includes('<img src=x'), 'the name is escaped');
    assert.ok(page.body.includes('&lt;img src=x onerror=alert(1)&gt;.demo'));
  });

  test('no token, key or certificate appears on any page', async () => {
    const kubeconfig = await readFile(rig.t.kubeconfig, 'utf8');
    const secrets = [...kubeconfig.matchAll(/(?:token|client-key-data|client-certificate-data|certificate-authority-data):\s*"?([^"\s]+)/g)].map((m) => m[1] ?? '');
    assert.ok(secrets.length > 0, 'the kubeconfig has a secret to look for');
    for (const path of PATHS) {
      const { body } = await get(rig.port, path);
      for (const secret of secrets) assert.ok(!body.includes(secret.slice(0, 24)), `${path} shows a secret`);
    }
  });
});

describe('status pages with --auth', () => {
  let rig: StatusRig;
  const auth = { username: 'ops', password: 's3cret pass' };
  before(async () => {
    rig = await startStatusRig({ auth });
  });
  after(() => rig?.close());

  for (const path of PATHS) {
    test(`${path} requires the credentials`, async () => {
      const none = await get(rig.port, path);
      assert.equal(none.status, 401);
      assert.match(String(none.headers['www-authenticate']), /^Basic realm=/);
      assert.doesNotMatch(none.body, /kubesocks_|"contexts"|<table/);
      assert.equal((await get(rig.port, path, { Authorization: basic('ops', 'wrong') })).status, 401);
      assert.equal((await get(rig.port, path, { Authorization: basic('ops', auth.password) })).status, 200);
      assert.equal((await get(rig.port, path, { 'Proxy-Authorization': basic('ops', auth.password) })).status, 200);
      // Right credentials, foreign Host: still refused.
      assert.equal((await get(rig.port, path, { Host: `evil.example:${rig.port}`, Authorization: basic('ops', auth.password) })).status, 403);
    });
  }

  test('asked through the proxy (absolute-form), it wants proxy credentials', async () => {
    const url = `http://127.0.0.1:${rig.port}/status.json`;
    assert.equal((await get(rig.port, url)).status, 407);
    const ok = await get(rig.port, url, { 'Proxy-Authorization': basic('ops', auth.password) });
    assert.equal(ok.status, 200);
    const s = JSON.parse(ok.body) as StatusSnapshot;
    assert.equal(s.auth, true);
    assert.ok(!ok.body.includes(auth.password), 'the password is not shown');
  });
});
