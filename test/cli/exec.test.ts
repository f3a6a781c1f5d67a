/**
 * `kubesocks env` and `kubesocks exec` against a running demo: programs that
 * honour proxy variables, and — under proxychains4 — programs that ignore
 * them: real psql reaching a real PostgreSQL server that stands behind a
 * simulated pod, by the pod's cluster DNS name.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDemo, type DemoProcess } from '../helpers/e2e-demo.js';
import { REPO_ROOT, cleanEnv, findBinary, run, type RunResult } from '../helpers/e2e-procs.js';
import { PostgresServer, freePort, postgresUnavailable } from '../helpers/postgres.js';

const proxychains = findBinary('proxychains4');
const curlBin = findBinary('curl');

/** Why the PostgreSQL part cannot run here, or undefined. In CI it must run. */
const pgSkip = postgresUnavailable ?? (!proxychains ? 'proxychains4 is not installed' : undefined);
if (pgSkip && process.env.CI === 'true') throw new Error(`CI: ${pgSkip}; scripts/ensure-test-tools.sh installs it`);

function kubesocks(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return run(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: REPO_ROOT, env: cleanEnv(env), timeoutMs: 30_000 });
}

test('kubesocks env prints export lines for both spellings, with NO_PROXY for loopback', async () => {
  const res = await kubesocks(['env', '--listen', '127.0.0.1:1099']);
  assert.equal(res.code, 0, res.stderr);
  const lines = res.stdout.trim().split('\n');
  for (const name of ['ALL_PROXY', 'all_proxy']) assert.ok(lines.includes(`export ${name}=socks5h://127.0.0.1:1099`), res.stdout);
  for (const name of ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy']) assert.ok(lines.includes(`export ${name}=http://127.0.0.1:1099`), res.stdout);
  for (const name of ['NO_PROXY', 'no_proxy']) assert.ok(lines.includes(`export ${name}=localhost,127.0.0.1,::1`), res.stdout);
});

test('kubesocks env quotes credentials for the shell', async () => {
  const res = await kubesocks(['env'], { KUBESOCKS_AUTH: "me:it's a secret" });
  assert.equal(res.code, 0, res.stderr);
  const bash = findBinary('bash');
  assert.ok(bash);
  const evaluated = await run(bash, ['-c', `eval "$1"; printf %s "$ALL_PROXY"`, 'bash', res.stdout], { timeoutMs: 5000 });
  assert.equal(evaluated.stdout, "socks5h://me:it's%20a%20secret@127.0.0.1:1080");
});

test('kubesocks exec without a running proxy: one line, exit 1, the program never starts', async () => {
  const port = await freePort();
  const res = await kubesocks(['exec', '--listen', `127.0.0.1:${port}`, '--', 'touch', join(tmpdir(), 'kubesocks-exec-must-not-run')]);
  assert.equal(res.code, 1);
  assert.equal(res.stderr.trim(), `kubesocks: no kubesocks proxy answers at 127.0.0.1:${port} (ECONNREFUSED): start one with "kubesocks" (or "kubesocks demo"), or name it with --listen`);
});

test('kubesocks exec with an unknown program: exit 127', async () => {
  const res = await kubesocks(['exec', '--', 'no-such-program-kubesocks']);
  assert.equal(res.code, 127);
  assert.match(res.stderr, /no-such-program-kubesocks: command not found/);
});

test('kubesocks exec refuses credentials proxychains4 cannot carry, before starting anything: one line, exit 2', { skip: !proxychains && 'proxychains4 is not installed' }, async () => {
  const port = await freePort();
  const marker = join(tmpdir(), 'kubesocks-exec-must-not-run');
  for (const auth of ['me:two words', 'me:pass#word', 'my user:secret']) {
    const res = await kubesocks(['exec', '--listen', `127.0.0.1:${port}`, '--', 'touch', marker], { KUBESOCKS_AUTH: auth });
    assert.equal(res.code, 2, res.stderr);
    assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
    assert.match(res.stderr, /proxychains4's configuration cannot carry: use credentials without them, or run with --no-proxychains/);
    assert.doesNotMatch(res.stderr, /two words|pass#word|secret/, 'the line must not show the password');
  }
  const plain = await kubesocks(['exec', '--no-proxychains', '--listen', `127.0.0.1:${port}`, '--', 'true'], { KUBESOCKS_AUTH: 'me:two words' });
  assert.match(plain.stderr, /no kubesocks proxy answers/, 'with --no-proxychains the credentials are fine');
});

describe('kubesocks exec against the demo', { skip: !curlBin && 'curl is not installed' }, () => {
  let demo: DemoProcess;
  let pg: PostgresServer | undefined;
  let scratch: string;

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'kubesocks-exec-test-'));
    if (!pgSkip) {
      pg = new PostgresServer();
      await pg.start();
    }
    const scenario = {
      pods: [
        { name: 'web-0', namespace: 'shop', labels: { app: 'web' }, ip: '10.244.5.10', ports: [{ name: 'http', containerPort: 8080, backend: 'http' }] },
        {
          name: 'db-0',
          namespace: 'shop',
          labels: { app: 'db' },
          ip: '10.244.5.20',
          hostname: 'db-0',
          subdomain: 'db',
          ports: [{ name: 'postgres', containerPort: 5432, backend: pg ? `127.0.0.1:${pg.port}` : 'echo' }],
        },
      ],
      services: [
        { name: 'web', namespace: 'shop', clusterIP: '10.96.5.10', selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
        { name: 'db', namespace: 'shop', clusterIP: 'None', selector: { app: 'db' }, ports: [{ name: 'postgres', port: 5432, targetPort: 'postgres' }] },
      ],
    };
    const file = join(scratch, 'scenario.json');
    writeFileSync(file, JSON.stringify(scenario));
    demo = await startDemo(['--scenario', file]);
  });

  after(async () => {
    await demo?.stop();
    await pg?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  test('a program that honours the proxy variables reaches a service by name', async () => {
    const res = await kubesocks(['exec', '--listen', demo.proxy, '--no-proxychains', '--', 'curl', '-sS', '--max-time', '10', 'http://web.shop/exec']);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^pod web-0 path \/exec/);
  });

  test('the program\'s exit code is kubesocks exec\'s', async () => {
    const res = await kubesocks(['exec', '--listen', demo.proxy, '--no-proxychains', '--', 'sh', '-c', 'exit 7']);
    assert.equal(res.code, 7);
  });

  test('under proxychains4 a program that ignores proxy variables reaches the pod by name', { skip: !proxychains && 'proxychains4 is not installed' }, async () => {
    const res = await kubesocks(['exec', '--listen', demo.proxy, '--', 'curl', '--noproxy', '*', '-sS', '--max-time', '10', 'http://web.shop.svc.cluster.local/chains']);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^pod web-0 path \/chains/);
  });

  test('real psql reaches PostgreSQL behind a pod by its headless DNS name, with no port per service', { skip: pgSkip }, async () => {
    const query = ['-U', 'postgres', '-Atc', "select 40 + 2, current_setting('port')"];
    const res = await kubesocks(['exec', '--listen', demo.proxy, '--', 'psql', '-h', 'db-0.db.shop.svc.cluster.local', ...query]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout.trim(), `42|${pg!.port}`);
    const byService = await kubesocks(['exec', '--listen', demo.proxy, '--', 'psql', '-h', 'db.shop', ...query]);
    assert.equal(byService.code, 0, byService.stderr);
    assert.equal(byService.stdout.trim(), `42|${pg!.port}`);
  });

  test('without proxychains psql ignores the proxy variables (why exec uses it)', { skip: pgSkip }, async () => {
    const res = await kubesocks(['exec', '--listen', demo.proxy, '--no-proxychains', '--', 'psql', '-h', 'db-0.db.shop.svc.cluster.local', '-U', 'postgres', '-c', 'select 1']);
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /could not translate host name|Name or service not known|Temporary failure in name resolution/);
  });
});
