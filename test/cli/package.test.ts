/**
 * The package as a user gets it: the tracked files of this repository (a
 * fresh clone, without dist/) packed with `npm pack` — which must build it —
 * then installed from the tarball into a scratch prefix, and run from
 * another directory: `kubesocks --version`, and the demo answering through
 * its proxy.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Proc, REPO_ROOT, cleanEnv, curl, findBinary, run } from '../helpers/e2e-procs.js';

const npm = findBinary('npm');
const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };

describe('npm pack, install the tarball, run it', { skip: !npm && 'npm is not on PATH' }, () => {
  let scratch: string;
  let tarball: string;
  let files: string[];
  let bin: string;

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'kubesocks-pack-'));
    const clone = join(scratch, 'clone');
    const tracked = execFileSync('git', ['ls-files', '-z'], { cwd: REPO_ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
    for (const file of tracked) {
      mkdirSync(join(clone, dirname(file)), { recursive: true });
      copyFileSync(join(REPO_ROOT, file), join(clone, file));
    }
    // The dependencies as `npm install` left them; dist/ is not there, as in a fresh clone.
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(clone, 'node_modules'));
    const packed = await run(npm!, ['pack', '--json', '--pack-destination', scratch], { cwd: clone, env: cleanEnv(), timeoutMs: 180_000 });
    assert.equal(packed.code, 0, packed.stderr);
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
    assert.ok(info);
    tarball = join(scratch, info.filename);
    files = info.files.map((f) => f.path);

    const prefix = join(scratch, 'prefix');
    const installed = await run(npm!, ['install', '--global', '--prefix', prefix, '--no-audit', '--no-fund', tarball], { cwd: scratch, env: cleanEnv(), timeoutMs: 300_000 });
    assert.equal(installed.code, 0, installed.stderr);
    bin = join(prefix, 'bin', 'kubesocks');
  });

  after(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test('the tarball holds the built CLI, types, the licence and README, and no source maps', () => {
    for (const expected of ['package.json', 'LICENSE', 'README.md', 'dist/cli.js', 'dist/index.js', 'dist/index.d.ts']) assert.ok(files.includes(expected), `${expected} missing from ${files.length} files`);
    assert.deepEqual(files.filter((f) => f.endsWith('.map')), [], 'source maps would point at sources the package does not ship');
    assert.deepEqual(files.filter((f) => f.startsWith('src/') || f.startsWith('test/')), []);
  });

  test('the installed command prints its version from any directory', async () => {
    const res = await run(bin, ['--version'], { cwd: tmpdir(), env: cleanEnv(), timeoutMs: 30_000 });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, `kubesocks ${version}\n`);
  });

  test('the installed demo serves through its proxy', async () => {
    const demo = new Proc(bin, ['demo', '--listen', '127.0.0.1:0'], { cwd: tmpdir(), env: cleanEnv() });
    try {
      const listening = await demo.waitFor(/listening on 127\.0\.0\.1:(\d+)/, { stream: 'stderr', timeoutMs: 30_000 });
      const res = await curl(['-x', `http://127.0.0.1:${listening[1]}`, 'http://web.demo/installed']);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /^pod web-\d path \/installed/);
    } finally {
      demo.signal('SIGTERM');
      await demo.settle(8000);
    }
  });
});
