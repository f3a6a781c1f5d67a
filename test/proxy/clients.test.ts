/**
 * Real clients against the proxy: curl in every proxy mode it has, and the
 * `socks` npm client.
 */
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SocksClient } from 'socks';
import { REFUSED_MESSAGE, startProxyFixture, type ProxyFixture, type SeenRequest } from '../helpers/proxy-fixtures.js';

interface CurlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment without any proxy settings of the machine running the tests. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/_proxy$/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

function curl(args: string[], env: Record<string, string> = {}): Promise<CurlResult> {
  return new Promise((resolve) => {
    const child = execFile('curl', ['-sS', '--max-time', '10', ...args], { env: cleanEnv(env), maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
    child.stdin?.end();
  });
}

describe('curl through the proxy', () => {
  let f: ProxyFixture;
  let p: string;
  before(async () => {
    f = await startProxyFixture();
    p = `127.0.0.1:${f.port}`;
  });
  after(async () => {
    await f.close();
  });

  const modes: Array<[string, (url: string) => string[], Record<string, string>?]> = [
    ['--socks5-hostname', (url) => ['--socks5-hostname', p, url]],
    ['--socks4a', (url) => ['--socks4a', p, url]],
    ['-x http:// (absolute-form)', (url) => ['-x', `http://${p}`, url]],
    ['-p -x http:// (CONNECT)', (url) => ['-p', '-x', `http://${p}`, url]],
    ['ALL_PROXY=socks5h://', (url) => [url], undefined],
    ['-x socks5h://', (url) => ['-x', `socks5h://${p}`, url]],
  ];

  for (const [name, args, env] of modes) {
    test(`${name} reaches the service by name`, async () => {
      const environment = name.startsWith('ALL_PROXY') ? { ALL_PROXY: `socks5h://${p}` } : (env ?? {});
      const res = await curl(args('http://web.test/hello?x=1'), environment);
      assert.equal(res.code, 0, res.stderr);
      const seen = JSON.parse(res.stdout) as SeenRequest;
      assert.equal(seen.url, '/hello?x=1');
      assert.equal(seen.headers.host, 'web.test');
      assert.equal(f.connector.targets.at(-1)?.host, 'web.test');
    });
  }

  test('-x http:// with POST bodies: small, and 2 MiB (curl sends Expect: 100-continue)', async () => {
    const small = await curl(['-x', `http://${p}`, '--data-binary', 'a=1&b=2', 'http://web.test/form']);
    assert.equal((JSON.parse(small.stdout) as SeenRequest).body, 'a=1&b=2');
    const dir = await mkdtemp(join(tmpdir(), 'kubesocks-proxy-'));
    try {
      const file = join(dir, 'body');
      await writeFile(file, 'z'.repeat(2 * 1024 * 1024));
      const large = await curl(['-x', `http://${p}`, '-v', '--data-binary', `@${file}`, 'http://web.test/upload']);
      assert.equal(large.code, 0, large.stderr);
      assert.match(large.stderr, /> Expect: 100-continue/);
      const seen = JSON.parse(large.stdout) as SeenRequest;
      assert.equal(seen.body.length, 2 * 1024 * 1024);
      assert.equal(seen.headers.expect, undefined, 'the expectation was met by the proxy');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('curl keeps one connection for two URLs through -x http://', async () => {
    const res = await curl(['-x', `http://${p}`, 'http://web.test/a', 'http://web.test/b', '-w', '\n%{num_connects}\n']);
    assert.equal(res.code, 0, res.stderr);
    const lines = res.stdout.trim().split('\n');
    assert.equal(lines.at(-1), '0', 'the second transfer reused the connection');
  });

  test('failures: SOCKS5 reply code and HTTP status reach curl', async () => {
    const socks = await curl(['--socks5-hostname', p, 'http://refused.test/']);
    assert.equal(socks.code, 97, socks.stderr);
    assert.match(socks.stderr, /SOCKS5 connection to refused\.test\. \(5\)/, 'reply 05: connection refused');
    const missing = await curl(['--socks5-hostname', p, 'http://missing.test/']);
    assert.match(missing.stderr, /\(4\)/, 'reply 04: host unreachable');
    const socks4 = await curl(['--socks4a', p, 'http://slow.test/']);
    assert.equal(socks4.code, 97, socks4.stderr);
    const http = await curl(['-x', `http://${p}`, '-w', '%{http_code}', 'http://refused.test/']);
    assert.equal(http.stdout, `${REFUSED_MESSAGE}\n502`);
    const connect = await curl(['-p', '-x', `http://${p}`, 'http://forbidden.test/']);
    assert.notEqual(connect.code, 0);
    assert.match(connect.stderr, /403/);
  });

  test('credentials: curl with --proxy-user over SOCKS5 and HTTP', async () => {
    const g = await startProxyFixture({ auth: { username: 'dev', password: 'pw:with:colons' } });
    try {
      const q = `127.0.0.1:${g.port}`;
      const socks = await curl(['--socks5-hostname', q, '--proxy-user', 'dev:pw:with:colons', 'http://web.test/s']);
      assert.equal(socks.code, 0, socks.stderr);
      const http = await curl(['-x', `http://${q}`, '--proxy-user', 'dev:pw:with:colons', 'http://web.test/h']);
      assert.equal((JSON.parse(http.stdout) as SeenRequest).url, '/h');
      const connect = await curl(['-p', '-x', `http://${q}`, '--proxy-user', 'dev:pw:with:colons', 'http://web.test/c']);
      assert.equal((JSON.parse(connect.stdout) as SeenRequest).url, '/c');
      const denied = await curl(['-x', `http://${q}`, '-w', '%{http_code}', '-o', '/dev/null', 'http://web.test/']);
      assert.equal(denied.stdout, '407');
      const deniedSocks = await curl(['--socks5-hostname', q, '--proxy-user', 'dev:nope', 'http://web.test/']);
      assert.notEqual(deniedSocks.code, 0);
    } finally {
      await g.close();
    }
  });

  test('curl fetches the PAC and /healthz', async () => {
    const pac = await curl([`http://${p}/proxy.pac`]);
    assert.match(pac.stdout, /function FindProxyForURL\(url, host\)/);
    const health = await curl([`http://${p}/healthz`]);
    assert.equal(health.stdout, 'ok\n');
  });
});

describe('the socks npm client', () => {
  let f: ProxyFixture;
  before(async () => {
    f = await startProxyFixture();
  });
  after(async () => {
    await f.close();
  });

  for (const type of [5, 4] as const) {
    test(`SOCKS${type} CONNECT by name, bytes both ways`, async () => {
      const { socket } = await SocksClient.createConnection({
        proxy: { host: '127.0.0.1', port: f.port, type },
        command: 'connect',
        destination: { host: 'echo.test', port: 7 },
      });
      socket.write('through socks');
      const [chunk] = (await new Promise((resolve) => socket.once('data', (c: Buffer) => resolve([c])))) as [Buffer];
      assert.equal(chunk.toString(), 'through socks');
      socket.destroy();
    });
  }

  test('SOCKS5 with username/password', async () => {
    const g = await startProxyFixture({ auth: { username: 'u', password: 'p' } });
    try {
      const { socket } = await SocksClient.createConnection({
        proxy: { host: '127.0.0.1', port: g.port, type: 5, userId: 'u', password: 'p' },
        command: 'connect',
        destination: { host: 'echo.test', port: 7 },
      });
      socket.destroy();
      await assert.rejects(
        SocksClient.createConnection({
          proxy: { host: '127.0.0.1', port: g.port, type: 5, userId: 'u', password: 'wrong' },
          command: 'connect',
          destination: { host: 'echo.test', port: 7 },
        }),
        /Authentication/i,
      );
    } finally {
      await g.close();
    }
  });

  test('failures surface as the socks client\'s errors', async () => {
    await assert.rejects(
      SocksClient.createConnection({ proxy: { host: '127.0.0.1', port: f.port, type: 5 }, command: 'connect', destination: { host: 'refused.test', port: 80 } }),
      /ConnectionRefused/,
    );
    const bind = new SocksClient({ proxy: { host: '127.0.0.1', port: f.port, type: 5 }, command: 'bind', destination: { host: '0.0.0.0', port: 0 } });
    const bindError = new Promise<Error>((resolve) => bind.once('error', resolve));
    bind.connect();
    assert.match((await bindError).message, /CommandNotSupported/);
    await assert.rejects(
      SocksClient.createConnection({ proxy: { host: '127.0.0.1', port: f.port, type: 4 }, command: 'connect', destination: { host: 'missing.test', port: 80 } }),
      /Rejected|Failed/i,
    );
  });
});
