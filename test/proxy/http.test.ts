/**
 * The HTTP front: CONNECT, absolute-form forwarding with keep-alive, the
 * proxy's own /healthz and /proxy.pac, credentials, failures, bad input.
 */
import * as assert from 'node:assert/strict';
import { Agent, request, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { runInNewContext } from 'node:vm';
import { ERROR_CODES, type ErrorCode } from '../../src/errors.js';
import { parseAbsoluteHttpUrl } from '../../src/proxy/http-forward.js';
import { filterHeaders } from '../../src/proxy/http-headers.js';
import { renderPac } from '../../src/proxy/pac.js';
import { FAILURE_REPLIES } from '../../src/proxy/replies.js';
import { RawClient, REFUSED_MESSAGE, startProxyFixture, waitFor, type ProxyFixture, type SeenRequest } from '../helpers/proxy-fixtures.js';

interface Response {
  status: number;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  body: string;
  reusedSocket: boolean;
  localPort: number | undefined;
}

/** One request through the proxy at `port` (absolute-form when `path` is a URL). */
function proxyRequest(
  port: number,
  path: string,
  options: { method?: string; headers?: OutgoingHttpHeaders; body?: string | string[]; agent?: Agent } = {},
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers, agent: options.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: Buffer.concat(chunks).toString(),
          reusedSocket: req.reusedSocket,
          localPort: req.socket?.localPort,
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    const body = options.body;
    if (Array.isArray(body)) {
      for (const part of body) req.write(part);
      req.end();
    } else req.end(body);
  });
}

/** The PAC file evaluated as a browser would, with the standard helpers stubbed. */
function loadPac(text: string): (url: string, host: string) => string {
  const sandbox: Record<string, unknown> = {
    dnsDomainIs: (host: string, domain: string) => host.length >= domain.length && host.slice(-domain.length) === domain,
    shExpMatch: (str: string, pattern: string) =>
      new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test(str),
  };
  runInNewContext(text, sandbox);
  const fn = sandbox['FindProxyForURL'];
  assert.equal(typeof fn, 'function');
  return fn as (url: string, host: string) => string;
}

describe('HTTP front', () => {
  let f: ProxyFixture;
  before(async () => {
    f = await startProxyFixture();
  });
  after(async () => {
    await f.close();
  });

  test('CONNECT: 200 Connection established, then raw bytes (also those sent with the request)', async () => {
    const c = await RawClient.connect(f.port);
    c.write('CONNECT echo.test:7 HTTP/1.1\r\nHost: echo.test:7\r\n\r\n\x16\x03\x01early');
    assert.equal(await c.readUntil('\r\n\r\n'), 'HTTP/1.1 200 Connection established\r\n\r\n');
    assert.equal((await c.read(8)).toString('latin1'), '\x16\x03\x01early');
    c.write('more');
    assert.equal((await c.read(4)).toString(), 'more');
    c.destroy();
  });

  test('CONNECT split into single bytes', async () => {
    const c = await RawClient.connect(f.port);
    await c.writeSlowly(Buffer.from('CONNECT echo.test:7 HTTP/1.1\r\n\r\n'), 1);
    assert.equal(await c.readUntil('\r\n\r\n'), 'HTTP/1.1 200 Connection established\r\n\r\n');
    c.write('x');
    assert.equal((await c.read(1)).toString(), 'x');
    c.destroy();
  });

  test('CONNECT to an IPv6 literal authority', async () => {
    const c = await RawClient.connect(f.port);
    c.write('CONNECT [::1]:9 HTTP/1.1\r\n\r\n');
    const head = await c.readUntil('\r\n\r\n');
    c.destroy();
    assert.deepEqual(f.connector.targets.at(-1), { host: '::1', port: 9 });
    assert.match(head, /^HTTP\/1\.1 502 /, 'nothing listens there: direct dial fails');
  });

  test('absolute-form: two requests on one client connection, origin-form upstream, hop-by-hop removed', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await proxyRequest(f.port, 'http://web.test/one?a=1&b=%20', {
        agent,
        headers: {
          Host: 'web.test',
          Connection: 'keep-alive, X-Secret-Hop',
          'X-Secret-Hop': 'must not pass',
          'Keep-Alive': 'timeout=5',
          'Proxy-Connection': 'keep-alive',
          'Proxy-Authorization': 'Basic Zm9vOmJhcg==',
          TE: 'trailers',
          Upgrade: 'h2c',
          'X-End-To-End': 'kept',
        },
      });
      const second = await proxyRequest(f.port, 'http://web.test:8080/two', { agent });
      assert.equal(first.status, 200);
      assert.equal(second.status, 200);
      assert.equal(second.reusedSocket, true, 'the client connection was kept alive');
      assert.equal(first.localPort, second.localPort);
      assert.equal(first.headers['x-fixture'], 'web');
      const seen1 = JSON.parse(first.body) as SeenRequest;
      const seen2 = JSON.parse(second.body) as SeenRequest;
      assert.equal(seen1.url, '/one?a=1&b=%20');
      assert.equal(seen1.headers.host, 'web.test');
      assert.equal(seen1.headers['x-end-to-end'], 'kept');
      for (const hop of ['x-secret-hop', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'upgrade']) {
        assert.equal(seen1.headers[hop], undefined, `${hop} must not be forwarded`);
      }
      assert.equal(seen1.headers.connection, 'close', 'one upstream stream per request');
      assert.equal(seen2.url, '/two');
      assert.equal(seen2.headers.host, 'web.test:8080');
      await waitFor(() => f.records.filter((r) => r.target?.startsWith('web.test:')).length >= 2, 'records');
      const recs = f.records.filter((r) => r.target === 'web.test:80' || r.target === 'web.test:8080');
      assert.equal(recs[0]?.client, recs[1]?.client);
      assert.equal(recs[0]?.protocol, 'http');
      assert.equal(recs[0]?.via, 'test/web');
    } finally {
      agent.destroy();
    }
  });

  test('absolute-form POST with Content-Length and with chunked bodies', async () => {
    const sized = await proxyRequest(f.port, 'http://web.test/post', { method: 'POST', headers: { 'Content-Length': '11' }, body: 'hello world' });
    const seenSized = JSON.parse(sized.body) as SeenRequest;
    assert.equal(seenSized.body, 'hello world');
    assert.equal(seenSized.headers['content-length'], '11');
    const chunked = await proxyRequest(f.port, 'http://web.test/post', { method: 'PUT', body: ['chunk-1;', 'chunk-2;', 'chunk-3'] });
    const seenChunked = JSON.parse(chunked.body) as SeenRequest;
    assert.equal(seenChunked.method, 'PUT');
    assert.equal(seenChunked.body, 'chunk-1;chunk-2;chunk-3');
    assert.equal(seenChunked.headers['transfer-encoding'], 'chunked');
  });

  test('a GET with a chunked body keeps its framing', async () => {
    const c = await RawClient.connect(f.port);
    c.write('GET http://web.test/g HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    const head = await c.readUntil('\r\n\r\n');
    const length = Number(/content-length: (\d+)/i.exec(head)?.[1]);
    const seen = JSON.parse((await c.read(length)).toString()) as SeenRequest;
    assert.equal(seen.body, 'abc');
    c.destroy();
  });

  test('responses: hop-by-hop headers dropped, chunked body relayed, large body intact', async () => {
    const chunked = await proxyRequest(f.port, 'http://web.test/chunked');
    assert.equal(chunked.body, 'hello world');
    assert.equal(chunked.headers['x-hop'], undefined);
    assert.equal(chunked.headers['keep-alive'], undefined);
    const big = await proxyRequest(f.port, 'http://web.test/big?n=3000000');
    assert.equal(big.body.length, 3_000_000);
    assert.equal(big.headers['content-length'], '3000000');
    const head = await proxyRequest(f.port, 'http://web.test/big?n=10', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  });

  test('HTTP/1.0 absolute-form without Host', async () => {
    const c = await RawClient.connect(f.port);
    c.write('GET http://web.test/old HTTP/1.0\r\n\r\n');
    const all = (await c.readToEnd()).toString();
    assert.match(all, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(all, /"url":"\/old"/);
    assert.match(all, /"host":"web.test"/);
  });

  const statusCases: Array<[string, number, ErrorCode]> = [
    ['refused.test', 502, 'POD_REFUSED'],
    ['missing.test', 502, 'NOT_FOUND'],
    ['forbidden.test', 403, 'FORBIDDEN'],
    ['slow.test', 504, 'TIMEOUT'],
  ];
  for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
    if (code !== 'CLOSED') statusCases.push([`fail-${code}.test`, FAILURE_REPLIES[code].http, code]);
  }

  test('absolute-form failures: the mapped status and a one-line text body, connection kept', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (const [host, status, code] of statusCases) {
        const res = await proxyRequest(f.port, `http://${host}/`, { agent });
        assert.equal(res.status, status, host);
        assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
        assert.equal(res.headers['x-kubesocks-error'], code);
        assert.match(res.body, /^[^\n]+\n$/, 'one line');
      }
      const refused = await proxyRequest(f.port, 'http://refused.test/', { agent });
      assert.equal(refused.body, `${REFUSED_MESSAGE}\n`, 'the kubelet text verbatim');
      assert.equal(refused.reusedSocket, true);
    } finally {
      agent.destroy();
    }
  });

  test('CONNECT failures: the mapped status, the reason, and a close', async () => {
    for (const [host, status, code] of statusCases.slice(0, 8)) {
      const c = await RawClient.connect(f.port);
      c.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`);
      const all = (await c.readToEnd()).toString();
      c.destroy();
      assert.match(all, new RegExp(`^HTTP/1\\.1 ${status} `), host);
      assert.match(all, new RegExp(`\r\nX-Kubesocks-Error: ${code}\r\n`));
      assert.match(all, /\r\nConnection: close\r\n/);
      if (host === 'refused.test') assert.ok(all.endsWith(`\r\n\r\n${REFUSED_MESSAGE}\n`));
    }
  });

  test('CONNECT without a port is a 400', async () => {
    const c = await RawClient.connect(f.port);
    c.write('CONNECT web.test HTTP/1.1\r\n\r\n');
    assert.match((await c.readToEnd()).toString(), /^HTTP\/1\.1 400 Bad Request\r\n/);
    c.destroy();
  });

  test('https:// in absolute-form is refused with a hint to use CONNECT', async () => {
    const res = await proxyRequest(f.port, 'https://web.test/');
    assert.equal(res.status, 400);
    assert.match(res.body, /CONNECT/);
  });

  test('/healthz, in origin-form and in absolute-form to the proxy itself', async () => {
    const res = await proxyRequest(f.port, '/healthz');
    assert.equal(res.status, 200);
    assert.equal(res.body, 'ok\n');
    const self = await proxyRequest(f.port, `http://127.0.0.1:${f.port}/healthz`);
    assert.equal(self.body, 'ok\n');
    const selfByName = await proxyRequest(f.port, `http://localhost:${f.port}/healthz`);
    assert.equal(selfByName.body, 'ok\n');
    assert.equal((await proxyRequest(f.port, '/nothing-here')).status, 404);
    assert.equal((await proxyRequest(f.port, '/healthz', { method: 'POST', body: 'x' })).status, 405);
  });

  test('/proxy.pac: valid JavaScript, cluster names through the proxy, the rest DIRECT', async () => {
    const res = await proxyRequest(f.port, '/proxy.pac');
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/x-ns-proxy-autoconfig');
    const find = loadPac(res.body);
    const proxy = `PROXY 127.0.0.1:${f.port}; SOCKS5 127.0.0.1:${f.port}`;
    for (const host of ['web.demo', 'WEB.Demo', 'web.demo.svc', 'web.demo.svc.cluster.local', 'web-0.web.demo.svc.cluster.local', '10-244-0-10.demo.pod.cluster.local', 'cluster.local', 'pg.db', 'x.svc.']) {
      assert.equal(find(`http://${host}/`, host), proxy, host);
    }
    for (const host of ['github.com', 'demo', 'svc', 'localhost', 'notdemo', 'demo.com', 'evil-cluster.local', 'web.other']) {
      assert.equal(find(`http://${host}/`, host), 'DIRECT', host);
    }
  });

  test('PAC rendering escapes and filters what it embeds', () => {
    const pac = renderPac({ clusterDomain: 'corp.example', namespaces: ['ok-ns', 'bad"ns', 'x\u2028y', '</script>', 'UPPER'], proxyAddress: '[::1]:1080' });
    const find = loadPac(pac);
    assert.equal(find('http://a.ok-ns/', 'a.ok-ns'), 'PROXY [::1]:1080; SOCKS5 [::1]:1080');
    assert.equal(find('http://a.upper/', 'a.upper'), 'PROXY [::1]:1080; SOCKS5 [::1]:1080');
    assert.equal(find('http://a.b.corp.example/', 'a.b.corp.example'), 'PROXY [::1]:1080; SOCKS5 [::1]:1080');
    assert.ok(!pac.includes('bad"ns') && !pac.includes('script'));
  });

  test('malformed requests get 400 and a close; headers over the cap get 431', async () => {
    for (const garbage of ['GET\x00 / HTTP/1.1\r\n\r\n', 'NOT A REQUEST\r\n\r\n', 'GET / HTTP/9.9\r\n\r\n', 'GET / HTTP/1.1\r\nBad Header\r\n\r\n']) {
      const c = await RawClient.connect(f.port);
      c.write(garbage);
      assert.match((await c.readToEnd()).toString(), /^HTTP\/1\.1 400 Bad Request\r\n/, JSON.stringify(garbage));
      c.destroy();
    }
    const c = await RawClient.connect(f.port);
    c.write(`GET http://web.test/ HTTP/1.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.match((await c.readToEnd()).toString(), /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    c.destroy();
  });

  test('upgrade requests are forwarded as plain requests (no Upgrade header)', async () => {
    const res = await proxyRequest(f.port, 'http://web.test/ws', { headers: { Connection: 'Upgrade', Upgrade: 'websocket' } });
    assert.equal(res.status, 200);
    const seen = JSON.parse(res.body) as SeenRequest;
    assert.equal(seen.headers.upgrade, undefined);
  });
});

describe('HTTP front with credentials', () => {
  let f: ProxyFixture;
  const good = `Basic ${Buffer.from('alice:pa:ss').toString('base64')}`;
  const bad = `Basic ${Buffer.from('alice:wrong').toString('base64')}`;
  before(async () => {
    f = await startProxyFixture({ auth: { username: 'alice', password: 'pa:ss' } });
  });
  after(async () => {
    await f.close();
  });

  test('absolute-form without or with wrong credentials: 407 with a Basic challenge', async () => {
    for (const headers of [{}, { 'Proxy-Authorization': bad }, { 'Proxy-Authorization': 'Bearer x' }]) {
      const res = await proxyRequest(f.port, 'http://web.test/', { headers });
      assert.equal(res.status, 407);
      assert.equal(res.headers['proxy-authenticate'], 'Basic realm="kubesocks"');
    }
    assert.equal(f.connector.targets.length, 0);
  });

  test('absolute-form with credentials: forwarded, credentials not passed on', async () => {
    const res = await proxyRequest(f.port, 'http://web.test/', { headers: { 'Proxy-Authorization': good } });
    assert.equal(res.status, 200);
    assert.equal((JSON.parse(res.body) as SeenRequest).headers['proxy-authorization'], undefined);
  });

  test('CONNECT without credentials: 407 and close; with: tunnel', async () => {
    const c = await RawClient.connect(f.port);
    c.write('CONNECT echo.test:7 HTTP/1.1\r\n\r\n');
    const all = (await c.readToEnd()).toString();
    assert.match(all, /^HTTP\/1\.1 407 Proxy Authentication Required\r\n/);
    assert.match(all, /\r\nProxy-Authenticate: Basic realm="kubesocks"\r\n/);
    c.destroy();
    const d = await RawClient.connect(f.port);
    d.write(`CONNECT echo.test:7 HTTP/1.1\r\nProxy-Authorization: ${good}\r\n\r\nhey`);
    assert.equal(await d.readUntil('\r\n\r\n'), 'HTTP/1.1 200 Connection established\r\n\r\n');
    assert.equal((await d.read(3)).toString(), 'hey');
    d.destroy();
  });

  test('/healthz is open; /proxy.pac needs credentials', async () => {
    assert.equal((await proxyRequest(f.port, '/healthz')).status, 200);
    const denied = await proxyRequest(f.port, '/proxy.pac');
    assert.equal(denied.status, 401);
    assert.equal(denied.headers['www-authenticate'], 'Basic realm="kubesocks"');
    assert.equal((await proxyRequest(f.port, '/proxy.pac', { headers: { Authorization: good } })).status, 200);
    assert.equal((await proxyRequest(f.port, `http://127.0.0.1:${f.port}/proxy.pac`)).status, 407);
  });
});

describe('HTTP helpers', () => {
  test('filterHeaders drops hop-by-hop and Connection-named headers, keeps order and case', () => {
    const raw = ['Host', 'a', 'Connection', 'keep-alive, X-A', 'connection', 'x-b', 'X-A', '1', 'x-b', '2', 'X-C', '3', 'Transfer-Encoding', 'chunked', 'Keep-Alive', 't'];
    assert.deepEqual(filterHeaders(raw, { transferEncoding: 'keep' }), ['Host', 'a', 'X-C', '3', 'Transfer-Encoding', 'chunked']);
    assert.deepEqual(filterHeaders(raw, { drop: ['host'], transferEncoding: 'unless-chunked' }), ['X-C', '3']);
    assert.deepEqual(filterHeaders(['Transfer-Encoding', 'gzip, chunked'], { transferEncoding: 'unless-chunked' }), ['Transfer-Encoding', 'gzip, chunked']);
  });

  test('parseAbsoluteHttpUrl', () => {
    assert.deepEqual(parseAbsoluteHttpUrl('http://web.demo/x/../y?q#f'), { target: { host: 'web.demo', port: 80 }, host: 'web.demo', path: '/x/../y?q' });
    assert.deepEqual(parseAbsoluteHttpUrl('HTTP://[::1]:8080'), { target: { host: '::1', port: 8080 }, host: '[::1]:8080', path: '/' });
    assert.deepEqual(parseAbsoluteHttpUrl('http://web.demo.?a'), { target: { host: 'web.demo', port: 80 }, host: 'web.demo.', path: '/?a' });
    assert.deepEqual(parseAbsoluteHttpUrl('http://Web.Demo:81/'), { target: { host: 'Web.Demo', port: 81 }, host: 'Web.Demo:81', path: '/' });
    for (const bad of ['https://x/', 'http://u:p@x/', 'http://x:0/', 'http://x:70000/', 'ftp://x/', 'http:///x', '/x', 'http://[zz]/', 'http://x:/']) {
      assert.equal(parseAbsoluteHttpUrl(bad), null, bad);
    }
  });
});
