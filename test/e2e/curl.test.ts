/**
 * `kubesocks demo` as a child process, driven by real curl in every proxy
 * mode and by the `socks` npm client (issue 4, "Done when"): each demo
 * service by each name form, each failure class with its SOCKS reply and
 * HTTP status, /proxy.pac and /healthz, and a clean exit on SIGTERM with a
 * connection still open.
 */
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runInNewContext } from 'node:vm';
import { createDialer, type Dialer } from '../../src/dialer/dialer.js';
import { createProxyServer, type ProxyServer } from '../../src/proxy/server.js';
import { apiGet, startDemo, type DemoProcess } from '../helpers/e2e-demo.js';
import { curl, findBinary, type RunResult } from '../helpers/e2e-procs.js';
import { roundTrip, rawSocks5Connect, socksClientReply, socksConnect } from '../helpers/socks-client.js';
import { startTestCluster, type TestCluster } from '../helpers/sim.js';

const curlBin = findBinary('curl');

interface Mode {
  name: string;
  /** curl arguments for `url` through the proxy at `proxy` (HOST:PORT). */
  args(proxy: string, url: string): string[];
  env?(proxy: string): Record<string, string>;
}

const MODES: Mode[] = [
  { name: '--socks5-hostname', args: (p, url) => ['--socks5-hostname', p, url] },
  { name: '--socks4a', args: (p, url) => ['--socks4a', p, url] },
  { name: '-x http:// (absolute-form)', args: (p, url) => ['-x', `http://${p}`, url] },
  { name: '-p -x http:// (CONNECT)', args: (p, url) => ['-p', '-x', `http://${p}`, url] },
  { name: 'ALL_PROXY=socks5h://', args: (_p, url) => [url], env: (p) => ({ ALL_PROXY: `socks5h://${p}` }) },
];

const viaMode = (mode: Mode, proxy: string, args: string[], url: string, options: { input?: string; maxTime?: number } = {}): Promise<RunResult> =>
  curl([...args, ...mode.args(proxy, url)], { ...options, ...(mode.env ? { env: mode.env(proxy) } : {}) });

/** A body that is one line of text (a trailing newline allowed). */
function assertOneLine(body: string, message: string): void {
  assert.match(body, /^[^\r\n]+\r?\n?$/, `${message}: not a one-line body: ${JSON.stringify(body)}`);
}

describe('curl and the socks client through `kubesocks demo`', { skip: !curlBin && 'curl is not installed' }, () => {
  let demo: DemoProcess;
  let proxy: string;
  let dir: string;
  let clusterIP: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubesocks-e2e-curl-'));
    const kubeconfig = join(dir, 'kubeconfig');
    demo = await startDemo(['--write-kubeconfig', kubeconfig]);
    proxy = demo.proxy;
    const svc = (await apiGet(kubeconfig, '/api/v1/namespaces/demo/services/web')) as { spec?: { clusterIP?: string } };
    clusterIP = svc.spec?.clusterIP ?? '';
    assert.match(clusterIP, /^\d+\.\d+\.\d+\.\d+$/, 'the web service has a ClusterIP');
  });

  after(async () => {
    demo?.proc.kill();
    await demo?.proc.closed;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Name forms that reach an HTTP backend; the body names the pod. */
  const httpForms: Array<{ form: string; url: () => string; pod: RegExp }> = [
    { form: 'web (short name: the kubeconfig namespace demo)', url: () => 'http://web/x', pod: /web-[0-2]/ },
    { form: 'web.demo', url: () => 'http://web.demo/x', pod: /web-[0-2]/ },
    { form: 'web.demo.svc', url: () => 'http://web.demo.svc/x', pod: /web-[0-2]/ },
    { form: 'web.demo.svc.cluster.local', url: () => 'http://web.demo.svc.cluster.local/x', pod: /web-[0-2]/ },
    { form: 'web-0.demo:8080 (pod by name)', url: () => 'http://web-0.demo:8080/x', pod: /web-0/ },
    { form: '10-244-0-10.demo.pod.cluster.local:8080 (pod DNS name)', url: () => 'http://10-244-0-10.demo.pod.cluster.local:8080/x', pod: /web-0/ },
    { form: 'the web service ClusterIP', url: () => `http://${clusterIP}/x`, pod: /web-[0-2]/ },
    { form: 'pod IP 10.244.0.10:8080', url: () => 'http://10.244.0.10:8080/x', pod: /web-0/ },
    { form: 'lonely.demo:8080 (a pod with no service)', url: () => 'http://lonely.demo:8080/x', pod: /lonely/ },
  ];

  for (const mode of MODES) {
    describe(`curl ${mode.name}`, () => {
      for (const { form, url, pod } of httpForms) {
        test(`reaches ${form}`, async () => {
          const res = await viaMode(mode, proxy, [], url());
          assert.equal(res.code, 0, res.output);
          assert.match(res.stdout.trim(), new RegExp(`^pod ${pod.source} path /x$`), res.output);
        });
      }
    });
  }

  test('every mode reaches the headless db-0.db.demo.svc.cluster.local:5432 and the echo service (curl telnet://, stdin echoed)', async () => {
    // curl's telnet never half-closes after stdin's EOF, and neither side closes an
    // echo: --max-time ends it (exit 28) once the echo is back. All at once, to save time.
    const targets = ['telnet://db-0.db.demo.svc.cluster.local:5432', 'telnet://db.demo:5432', 'telnet://echo.demo:7', 'telnet://echo.demo.svc.cluster.local:7'];
    const runs = MODES.flatMap((mode) =>
      targets.map(async (target, i) => {
        const input = `ping ${i} ${mode.name}\n`;
        return { mode, target, input, res: await viaMode(mode, proxy, [], target, { input, maxTime: 2 }) };
      }),
    );
    for (const { mode, target, input, res } of await Promise.all(runs)) {
      assert.ok(res.code === 0 || res.code === 28, `${mode.name} ${target}\n${res.output}`);
      assert.equal(res.stdout, input, `${mode.name} ${target}\n${res.output}`);
    }
  });

  describe('failures give the stated SOCKS reply and HTTP status', () => {
    const failures: Array<{ what: string; host: string; port: number; rep: number; reason: RegExp }> = [
      { what: 'a pod port nothing listens on (web-0.demo:9090)', host: 'web-0.demo', port: 9090, rep: 0x05, reason: /error forwarding port 9090 to pod web-0, uid [0-9a-f-]+: .*connection refused/ },
      { what: 'no such service (nope.demo)', host: 'nope.demo', port: 80, rep: 0x04, reason: /nope/ },
      { what: 'a service port that does not exist (web.demo:81)', host: 'web.demo', port: 81, rep: 0x04, reason: /81/ },
    ];
    for (const f of failures) {
      test(`${f.what}: SOCKS5 ${f.rep.toString(16).padStart(2, '0')} (curl, socks client, raw), SOCKS4a 91, HTTP 502 with a one-line reason`, async () => {
        const url = `http://${f.host}:${f.port}/`;

        const s5 = await curl(['--socks5-hostname', proxy, url]);
        assert.equal(s5.code, 97, s5.output);
        assert.match(s5.stderr, new RegExp(`\\(${f.rep}\\)`), s5.output);

        assert.equal(await socksClientReply(demo.port, f.host, f.port), f.rep, 'the socks npm client');
        const raw = await rawSocks5Connect(demo.port, f.host, f.port);
        assert.equal(raw.rep, f.rep, 'the REP byte on the wire');

        const s4 = await curl(['--socks4a', proxy, url]);
        assert.equal(s4.code, 97, s4.output);
        assert.match(s4.stderr, /\(91\)/, s4.output);

        const http = await curl(['-x', `http://${proxy}`, '-w', '\n%{http_code}', url]);
        assert.equal(http.code, 0, http.output);
        const status = http.stdout.slice(http.stdout.lastIndexOf('\n') + 1);
        const body = http.stdout.slice(0, http.stdout.lastIndexOf('\n'));
        assert.equal(status, '502', http.output);
        assertOneLine(body, 'absolute-form');
        assert.match(body, f.reason, http.output);

        const connect = await curl(['-p', '-x', `http://${proxy}`, url]);
        assert.equal(connect.code, 56, connect.output);
        assert.match(connect.stderr, /502/, connect.output);
      });
    }
  });

  describe('a user without pods/portforward (in-process proxy with the viewer kubeconfig)', () => {
    let tc: TestCluster;
    let dialer: Dialer;
    let server: ProxyServer;
    let viewerProxy: string;
    let viewerPort: number;

    before(async () => {
      tc = await startTestCluster();
      dialer = await createDialer({ kubeconfig: await tc.kubeconfigFor('viewer') });
      server = createProxyServer({ connector: dialer.connector() });
      viewerPort = (await server.listen('127.0.0.1', 0)).port;
      viewerProxy = `127.0.0.1:${viewerPort}`;
    });

    after(async () => {
      await server?.close();
      await dialer?.close();
      await tc?.close();
    });

    test('SOCKS5 02 (curl, socks client, raw) and HTTP 403 with the API server\'s reason', async () => {
      const s5 = await curl(['--socks5-hostname', viewerProxy, 'http://web.demo/']);
      assert.equal(s5.code, 97, s5.output);
      assert.match(s5.stderr, /\(2\)/, s5.output);
      assert.equal(await socksClientReply(viewerPort, 'web-0.demo', 8080), 0x02);
      assert.equal((await rawSocks5Connect(viewerPort, 'web.demo.svc.cluster.local', 80)).rep, 0x02);

      const http = await curl(['-x', `http://${viewerProxy}`, '-w', '\n%{http_code}', 'http://web.demo/']);
      const status = http.stdout.slice(http.stdout.lastIndexOf('\n') + 1);
      const body = http.stdout.slice(0, http.stdout.lastIndexOf('\n'));
      assert.equal(status, '403', http.output);
      assertOneLine(body, 'absolute-form');
      assert.match(body, /forbidden/i, http.output);

      const connect = await curl(['-p', '-x', `http://${viewerProxy}`, 'http://web.demo/']);
      assert.equal(connect.code, 56, connect.output);
      assert.match(connect.stderr, /403/, connect.output);
    });
  });

  describe('the socks npm client', () => {
    test('SOCKS5 CONNECT to echo.demo:7 exchanges bytes, 1 MiB included (no flow-control stall)', async () => {
      const socket = await socksConnect(demo.port, 'echo.demo', 7);
      try {
        assert.equal((await roundTrip(socket, Buffer.from('hello echo\n'))).toString(), 'hello echo\n');
        const big = Buffer.alloc(1024 * 1024);
        for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
        assert.ok((await roundTrip(socket, big)).equals(big), '1 MiB came back intact');
      } finally {
        socket.destroy();
      }
    });

    test('SOCKS4a CONNECT to the headless db-0.db.demo.svc.cluster.local:5432 exchanges bytes', async () => {
      const socket = await socksConnect(demo.port, 'db-0.db.demo.svc.cluster.local', 5432, { type: 4 });
      try {
        assert.equal((await roundTrip(socket, Buffer.from('SELECT 1;\n'))).toString(), 'SELECT 1;\n');
      } finally {
        socket.destroy();
      }
    });

    test('SOCKS5 CONNECT to web-0.demo:8080 speaks HTTP with the pod', async () => {
      const socket = await socksConnect(demo.port, 'web-0.demo', 8080);
      try {
        socket.write('GET /socks HTTP/1.1\r\nHost: web-0.demo:8080\r\nConnection: close\r\n\r\n');
        socket.resume();
        let text = '';
        socket.setEncoding('utf8').on('data', (s: string) => (text += s));
        await once(socket, 'end');
        assert.match(text, /^HTTP\/1\.1 200 /);
        assert.match(text, /pod web-0 path \/socks/);
      } finally {
        socket.destroy();
      }
    });
  });

  describe('requests to the proxy itself', () => {
    test('/healthz answers 200 ok', async () => {
      const res = await curl(['-w', '\n%{http_code}', `http://${proxy}/healthz`]);
      assert.equal(res.code, 0, res.output);
      assert.match(res.stdout, /^ok\s*\n200$/, res.output);
    });

    test('/proxy.pac sends cluster names through the proxy and everything else DIRECT', async () => {
      const res = await curl(['-D', '-', `http://${proxy}/proxy.pac`]);
      assert.equal(res.code, 0, res.output);
      assert.match(res.stdout, /^HTTP\/1\.1 200/);
      const pac = res.stdout.slice(res.stdout.indexOf('\r\n\r\n') + 4);
      assert.match(pac, /function FindProxyForURL\(/);
      // Evaluate it as a browser would, with the PAC helpers it may use.
      const sandbox: Record<string, unknown> = {
        dnsDomainIs: (host: string, domain: string) => host.length >= domain.length && host.endsWith(domain),
        shExpMatch: (s: string, glob: string) =>
          new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test(s),
        isPlainHostName: (host: string) => !host.includes('.'),
        dnsResolve: () => null,
        isInNet: () => false,
        myIpAddress: () => '127.0.0.1',
        localHostOrDomainIs: (host: string, hostdom: string) => host === hostdom || hostdom.startsWith(`${host}.`),
      };
      runInNewContext(pac, sandbox, { timeout: 1000 });
      const find = sandbox.FindProxyForURL as (url: string, host: string) => string;
      assert.equal(typeof find, 'function');
      for (const host of ['web.demo.svc.cluster.local', 'web.demo.svc', 'web.demo', 'api.other', 'db-0.db.demo.svc.cluster.local']) {
        const answer = find(`http://${host}/`, host);
        assert.match(answer, new RegExp(`(PROXY|SOCKS5?) ${proxy.replace(/\./g, '\\.')}`), `${host} → ${answer}`);
      }
      for (const host of ['github.com', 'example.com', 'demo']) {
        assert.equal(find(`http://${host}/`, host), 'DIRECT', host);
      }
    });
  });

  test('SIGTERM with a connection open: the demo closes it and exits 0 within a few seconds', async () => {
    const socket = await socksConnect(demo.port, 'echo.demo', 7);
    socket.on('error', () => {});
    assert.equal((await roundTrip(socket, Buffer.from('still here\n'))).toString(), 'still here\n');
    // A tunnel still open after the grace period is cut midway: a reset (ECONNRESET), not a FIN.
    let resetSeen = false;
    socket.once('error', (err: NodeJS.ErrnoException) => (resetSeen = err.code === 'ECONNRESET'));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    const exit = await demo.stop({ timeoutMs: 10_000 });
    assert.equal(exit.timedOut, false, `the demo did not exit within 10 s\n${demo.proc.output}`);
    assert.equal(exit.code, 0, demo.proc.output);
    assert.ok(exit.ms < 6000, `exit took ${Math.round(exit.ms)} ms`);
    await closed;
    assert.equal(resetSeen, true, 'the open tunnel is reset at shutdown');
    assert.match(demo.proc.stderr, /SIGTERM: closing/);
    // Nothing answers on the port any more.
    const gone = await curl([`http://${proxy}/healthz`], { maxTime: 3 });
    assert.notEqual(gone.code, 0, gone.output);
  });
});
