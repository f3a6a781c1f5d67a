/**
 * dist/cli.js as `npm run build` leaves it: the command bundled by
 * scripts/bundle-cli.mjs. What bundling could break without a word, run for
 * real: the version read relative to a module's own file (import.meta.url
 * rewritten to the unbundled path), ws' native masking (bufferutil is
 * require()d from inside the bundled ws), and a package left outside the
 * bundle loaded on demand — an exec-plugin kubeconfig, whose client-node
 * authenticator is imported only then — against the demo's simulated
 * cluster, a request answered through each.
 */
import * as assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import yaml from 'js-yaml';
import { Proc, REPO_ROOT, cleanEnv, curl } from '../helpers/e2e-procs.js';

const CLI = join(REPO_ROOT, 'dist', 'cli.js');
const BANNER = "import { createRequire as __kubesocksCreateRequire } from 'node:module';";
const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };

async function started(proc: Proc): Promise<string> {
  const m = await proc.waitFor(/listening on (127\.0\.0\.1:\d+)/, { stream: 'stderr', timeoutMs: 30_000 });
  return m[1]!;
}

describe('the bundled command (dist/cli.js)', () => {
  let scratch: string;
  let demo: Proc;
  let demoProxy: string;
  let kubeconfig: string;

  before(async () => {
    assert.ok(existsSync(CLI) && readFileSync(CLI, 'utf8').includes(BANNER), `${CLI} is not the bundle: run "npm run build"`);
    scratch = mkdtempSync(join(tmpdir(), 'kubesocks-bundle-'));
    kubeconfig = join(scratch, 'kubeconfig');
    demo = new Proc(process.execPath, [CLI, 'demo', '--listen', '127.0.0.1:0', '--write-kubeconfig', kubeconfig], { env: cleanEnv() });
    demoProxy = await started(demo);
  });

  after(async () => {
    demo?.kill();
    await demo?.closed;
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test('is the entry and its chunks only, next to tsc\'s modules', () => {
    const entry = readFileSync(CLI, 'utf8');
    const imported = [...entry.matchAll(/from "([^"]+)"|import\("([^"]+)"\)/g)].map((m) => m[1] ?? m[2]!);
    assert.ok(imported.length > 0);
    for (const path of imported) assert.match(path, /^(node:|\.\/cli-[\w-]+\.js$)/, `dist/cli.js imports ${path}`);
    assert.ok(readdirSync(join(REPO_ROOT, 'dist')).some((f) => /^cli-demo-\w+\.js$/.test(f)), 'demo is a chunk of its own');
  });

  test('reports the package version on the status page (a path relative to the module\'s own file)', async () => {
    const res = await curl([`http://${demoProxy}/status.json`]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal((JSON.parse(res.stdout) as { version: string }).version, version);
  });

  test('masks WebSocket frames with the native bufferutil when it is installed', { skip: !existsSync(join(REPO_ROOT, 'node_modules', 'bufferutil')) && 'bufferutil is not installed' }, async () => {
    const res = await curl(['-x', `http://${demoProxy}`, 'http://web.demo/bundle']);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^pod web-\d path \/bundle/);
    const maps = readFileSync(`/proc/${demo.pid}/maps`, 'utf8');
    assert.match(maps, /bufferutil\.node/, 'the bundled ws did not load bufferutil');
  });

  test('serves with an exec-plugin kubeconfig: the authenticator, left outside the bundle, loads on demand', async () => {
    const config = yaml.load(readFileSync(kubeconfig, 'utf8')) as { users: Array<{ user: Record<string, unknown> }> };
    const user = config.users[0]!.user;
    const token = user.token as string;
    assert.ok(token);
    const credential = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token } });
    config.users[0]!.user = {
      exec: { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: ['-e', `process.stdout.write(${JSON.stringify(credential)})`], interactiveMode: 'Never' },
    };
    const execConfig = join(scratch, 'kubeconfig-exec');
    writeFileSync(execConfig, yaml.dump(config), { mode: 0o600 });
    const serve = new Proc(process.execPath, [CLI, 'serve', '--kubeconfig', execConfig, '--listen', '127.0.0.1:0'], { env: cleanEnv() });
    try {
      const proxy = await started(serve);
      const res = await curl(['-x', `http://${proxy}`, 'http://web.demo/exec-plugin']);
      assert.equal(res.code, 0, `${res.stderr}\n${serve.output}`);
      assert.match(res.stdout, /^pod web-\d path \/exec-plugin/);
    } finally {
      serve.kill();
      await serve.closed;
    }
  });
});
