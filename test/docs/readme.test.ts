/**
 * The README as a newcomer uses it: every code block is taken from the
 * README itself and run as written, so the two cannot drift. Each block is
 * preceded by `<!-- readme-test: KIND -->`, which says how:
 *
 * - `run`: the lines run in bash (`set -e`) against a running demo, with
 *   the `kubesocks` command on PATH and `127.0.0.1:1080` meaning the demo's
 *   proxy; the demo's scenario adds a real PostgreSQL behind `postgres.db`.
 * - `serve`: the command starts something long-running; it must print that
 *   it is ready (`listening on` / `Forwarding from`) and stop cleanly.
 * - `install`: run in a copy of the repository's tracked files, with npm's
 *   global prefix in a scratch directory.
 * - `ts`: a program using the library, run against the demo.
 * - `try-it`: the two set-up commands; CI runs the same test command.
 * - `synopsis`: every flag shown exists in that command's `--help`.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { renderFailureRepliesMarkdown } from '../../src/proxy/replies.js';
import { demoScenario } from '../../src/sim/scenario.js';
import { startDemo, type DemoProcess } from '../helpers/e2e-demo.js';
import { Proc, REPO_ROOT, cleanEnv, findBinary, run } from '../helpers/e2e-procs.js';
import { PostgresServer, postgresUnavailable } from '../helpers/postgres.js';

const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
const ci = readFileSync(join(REPO_ROOT, '.ci/run'), 'utf8');
const bash = findBinary('/bin/bash', 'bash') ?? 'bash';

const KINDS = ['run', 'serve', 'install', 'ts', 'try-it', 'synopsis'] as const;
type Kind = (typeof KINDS)[number];

interface Block {
  kind: Kind | undefined;
  /** The annotation as written, for messages. */
  annotation: string;
  lang: string;
  code: string;
  line: number;
}

function readmeBlocks(text: string): Block[] {
  const blocks: Block[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const end = lines.indexOf('```', i + 1);
    assert.ok(end > i, `unclosed code block at README line ${i + 1}`);
    let before = i - 1;
    while (before >= 0 && lines[before]!.trim() === '') before--;
    const annotation = lines[before]?.trim() ?? '';
    const kind = /^<!-- readme-test: ([a-z-]+) -->$/.exec(annotation)?.[1] as Kind | undefined;
    blocks.push({ kind: kind && KINDS.includes(kind) ? kind : undefined, annotation, lang: open[1] ?? '', code: lines.slice(i + 1, end).join('\n'), line: i + 1 });
    i = end;
  }
  return blocks;
}

const blocks = readmeBlocks(readme);
const ofKind = (kind: Kind): Block[] => blocks.filter((b) => b.kind === kind);

test('every code block in the README says how it is tested', () => {
  const untested = blocks.filter((b) => b.kind === undefined).map((b) => `line ${b.line}: preceded by "${b.annotation}"`);
  assert.deepEqual(untested, [], `blocks without <!-- readme-test: ${KINDS.join('|')} -->`);
  assert.ok(ofKind('run').length >= 2 && ofKind('ts').length >= 1 && ofKind('install').length === 1);
});

test('the failure table in the README is the one the code uses', () => {
  assert.ok(readme.includes(renderFailureRepliesMarkdown().trimEnd()), 'README table differs from renderFailureRepliesMarkdown(); paste the new one');
});

test('"Try it": the two set-up commands; CI runs the same test command; the demo script is build + demo', () => {
  const [tryIt] = ofKind('try-it');
  assert.ok(tryIt);
  const commands = tryIt.code.split('\n').map((l) => l.replace(/\s+#.*$/, '').trim());
  assert.deepEqual(commands, ['npm install && npm run demo', 'npm install && npm test']);
  assert.match(ci, /^npm install\b/m);
  assert.match(ci, /^npm test$/m);
  const scripts = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  assert.equal(scripts.demo, 'npm run build --silent && node dist/cli.js demo');
});

test('the synopsis shows only flags the commands have', async () => {
  const [synopsis] = ofKind('synopsis');
  assert.ok(synopsis);
  const missing: string[] = [];
  let command = 'serve';
  for (const line of synopsis.code.split('\n')) {
    const named = /^kubesocks (\[serve\]|[a-z]+)/.exec(line);
    if (named) command = named[1] === '[serve]' ? 'serve' : named[1]!;
    if (/^kubesocks --version/.test(line)) continue;
    const help = (await run(process.execPath, ['dist/cli.js', command, '--help'], { cwd: REPO_ROOT, env: cleanEnv() })).stdout;
    for (const flag of line.match(/(?<![\w-])--?[a-z][\w-]*/g) ?? []) {
      if (flag === '--' || flag === '-') continue;
      if (!new RegExp(`(^|[\\s,])${flag}\\b`, 'm').test(help)) missing.push(`kubesocks ${command} ${flag}`);
    }
  }
  assert.deepEqual(missing, []);
});

/** `kubesocks` on PATH, as after the README's install, running this checkout's build. */
function shimDir(scratch: string): string {
  const dir = join(scratch, 'bin');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'kubesocks'), `#!/bin/sh\nexec "${process.execPath}" "${join(REPO_ROOT, 'dist/cli.js')}" "$@"\n`);
  chmodSync(join(dir, 'kubesocks'), 0o755);
  return dir;
}

describe('the README blocks, run as written against the demo', () => {
  let scratch: string;
  let demo: DemoProcess;
  let pg: PostgresServer | undefined;
  let env: NodeJS.ProcessEnv;

  /** What "127.0.0.1:1080" and the fixed local ports in the README stand for here. */
  const substitute = (code: string): string => code.replaceAll('127.0.0.1:1080', demo.proxy);

  before(async () => {
    if (postgresUnavailable && process.env.CI === 'true') throw new Error(`CI: ${postgresUnavailable}`);
    scratch = mkdtempSync(join(tmpdir(), 'kubesocks-readme-'));
    const scenario = demoScenario();
    if (!postgresUnavailable) {
      pg = new PostgresServer();
      await pg.start();
      scenario.namespaces = [...(scenario.namespaces ?? []), 'db'];
      scenario.pods.push({
        name: 'postgres-0',
        namespace: 'db',
        labels: { app: 'postgres' },
        ip: '10.244.9.10',
        ports: [{ name: 'postgres', containerPort: 5432, backend: `127.0.0.1:${pg.port}` }],
      });
      scenario.services.push({ name: 'postgres', namespace: 'db', clusterIP: '10.96.9.10', selector: { app: 'postgres' }, ports: [{ name: 'postgres', port: 5432, targetPort: 'postgres' }] });
    }
    writeFileSync(join(scratch, 'scenario.json'), JSON.stringify(scenario));
    const kubeconfig = join(scratch, 'kubeconfig');
    demo = await startDemo(['--scenario', join(scratch, 'scenario.json'), '--write-kubeconfig', kubeconfig]);
    env = cleanEnv({ PATH: `${shimDir(scratch)}:${process.env.PATH ?? ''}`, KUBECONFIG: kubeconfig, KUBESOCKS_LISTEN: demo.proxy });
  });

  after(async () => {
    await demo?.stop();
    await pg?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test('"run" blocks exit 0', async () => {
    for (const block of ofKind('run')) {
      if (block.code.includes('psql') && postgresUnavailable) continue;
      const res = await run(bash, ['-e', '-o', 'pipefail', '-c', substitute(block.code)], { cwd: scratch, env, timeoutMs: 60_000 });
      assert.equal(res.code, 0, `README line ${block.line}:\n${block.code}\n--- output:\n${res.output}`);
      assert.match(res.stdout, /pod web-\d path \//, `README line ${block.line}: no web pod answered\n${res.output}`);
    }
  });

  test('"serve" blocks start, say they are ready, and stop on SIGTERM', async () => {
    for (const block of ofKind('serve')) {
      // Their own ports: port 0 for the proxy, a free one for a forward.
      const code = block.code.replace(/ (\d+):(\d+)$/m, ' :$2');
      const proc = new Proc(bash, ['-c', `exec ${code}`], { cwd: scratch, env: { ...env, KUBESOCKS_LISTEN: '127.0.0.1:0' } });
      try {
        await proc.waitFor(/listening on 127\.0\.0\.1:\d+|Forwarding from 127\.0\.0\.1:\d+/, { timeoutMs: 30_000 });
      } finally {
        proc.signal('SIGTERM');
        const exit = await proc.settle(10_000);
        assert.equal(exit.code, 0, `README line ${block.line}: ${code}\n${proc.output}`);
      }
    }
  });

  test('the library example runs as written', async () => {
    for (const block of ofKind('ts')) {
      // Inside the repository, so that `import 'kubesocks'` finds this package (its built dist/).
      const file = join(REPO_ROOT, 'test', 'docs', `.readme-example-${process.pid}.ts`);
      writeFileSync(file, block.code);
      try {
        const res = await run(process.execPath, ['--import', 'tsx', file], { cwd: REPO_ROOT, env, timeoutMs: 60_000 });
        assert.equal(res.code, 0, `README line ${block.line}:\n${res.output}`);
        assert.match(res.stdout, /pod web-\d path \/raw/);
        assert.match(res.stdout, /pod web-\d path \/agent/);
      } finally {
        rmSync(file, { force: true });
      }
    }
  });
});

describe('the README install block, in a fresh copy of the repository', { skip: !findBinary('npm') && 'npm is not on PATH' }, () => {
  test('installs the kubesocks command', async () => {
    const [block] = ofKind('install');
    assert.ok(block);
    const scratch = mkdtempSync(join(tmpdir(), 'kubesocks-readme-install-'));
    try {
      const clone = join(scratch, 'clone');
      for (const file of execFileSync('git', ['ls-files', '-z'], { cwd: REPO_ROOT, encoding: 'utf8' }).split('\0').filter(Boolean)) {
        mkdirSync(join(clone, dirname(file)), { recursive: true });
        copyFileSync(join(REPO_ROOT, file), join(clone, file));
      }
      const prefix = join(scratch, 'prefix');
      const env = cleanEnv({ NPM_CONFIG_PREFIX: prefix, PATH: `${join(prefix, 'bin')}:${process.env.PATH ?? ''}`, npm_config_audit: 'false', npm_config_fund: 'false' });
      const res = await run(bash, ['-e', '-o', 'pipefail', '-c', block.code], { cwd: clone, env, timeoutMs: 540_000 });
      assert.equal(res.code, 0, res.output);
      const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
      assert.match(res.stdout, new RegExp(`^kubesocks ${version.replaceAll('.', '\\.')}$`, 'm'));
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});
