/** The command line: help, usage errors and refusals, each one clear line and the right exit code. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 30_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr.replace(/^npm warn.*\n/gm, '') };
}

test('--help for each command', () => {
  for (const args of [['--help'], ['demo', '--help'], ['forward', '--help'], ['serve', '--help']]) {
    const { code, stdout } = cli(args);
    assert.equal(code, 0, args.join(' '));
    assert.match(stdout, /Usage: kubesocks/);
  }
});

test('a non-loopback listener without credentials is refused before anything starts', () => {
  const { code, stderr } = cli(['--listen', '0.0.0.0:0', '--kubeconfig', '/nonexistent'], { KUBESOCKS_AUTH: '' });
  assert.equal(code, 2);
  assert.match(stderr, /^kubesocks: refusing to listen on 0\.0\.0\.0:0 without credentials: .* add --auth USER:PASSWORD/);
  assert.equal(stderr.trim().split('\n').length, 1);
});

test('--listen uses the one loopback rule: any loopback spelling passes, *.localhost and unbracketed IPv6 do not', () => {
  // Passing the rule means reaching the (missing) kubeconfig: exit 1, not the refusal's 2.
  for (const listen of ['[::ffff:127.0.0.1]:0', '[::1]:0', 'localhost:0', '0']) {
    const { code, stderr } = cli(['--listen', listen, '--kubeconfig', '/nonexistent'], { KUBESOCKS_AUTH: '' });
    assert.equal(code, 1, `${listen}: ${stderr}`);
    assert.match(stderr, /\[CONFIG\]/);
  }
  const refused = cli(['--listen', 'evil.localhost:0', '--kubeconfig', '/nonexistent'], { KUBESOCKS_AUTH: '' });
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /refusing to listen on evil\.localhost:0 without credentials/);
  const ambiguous = cli(['--listen', '::1:1080']);
  assert.equal(ambiguous.code, 2);
  assert.match(ambiguous.stderr, /--listen: "::1:1080" is not HOST:PORT \(write IPv6 addresses as \[addr\]:PORT\)/);
});

test('usage errors and a missing kubeconfig: one line each', () => {
  const cases: Array<[string[], number, RegExp]> = [
    [['frob'], 2, /unknown command "frob"/],
    [['--bogus'], 2, /^kubesocks: unknown flag --bogus \(see kubesocks --help\)$/m],
    [['--listen'], 2, /^kubesocks: --listen needs a value \(see kubesocks --help\)$/m],
    [['demo', '--verbose=yes'], 2, /^kubesocks: --verbose takes no value \(see kubesocks --help\)$/m],
    [['exec', '--frob', '--', 'true'], 2, /^kubesocks: unknown flag --frob \(see kubesocks exec --help\)$/m],
    [['exec'], 2, /exec needs a command: kubesocks exec -- COMMAND/],
    [['--listen', 'nope:99999'], 2, /--listen: expected HOST:PORT/],
    [['--auth', 'nocolon'], 2, /--auth: expected USER:PASSWORD/],
    [['--direct', 'maybe', '--kubeconfig', '/nonexistent'], 2, /--direct: expected "allow" or "deny"/],
    [['forward'], 2, /forward needs TYPE\/NAME/],
    [['forward', 'job/x', '80'], 2, /"job" cannot be forwarded/],
    [['--kubeconfig', '/nonexistent/kubeconfig'], 1, /kubeconfig \/nonexistent\/kubeconfig does not exist \[CONFIG\]/],
  ];
  for (const [args, expectedCode, message] of cases) {
    const { code, stderr } = cli(args);
    assert.equal(code, expectedCode, `${args.join(' ')}: ${stderr}`);
    assert.match(stderr, message);
    assert.equal(stderr.trim().split('\n').length, 1, `${args.join(' ')} printed more than one line: ${stderr}`);
  }
});

test('--version prints the package version', () => {
  const { code, stdout } = cli(['--version']);
  assert.equal(code, 0);
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.equal(stdout, `kubesocks ${version}\n`);
});

test('a port in use: one line that says what to do', async () => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const { port } = blocker.address() as AddressInfo;
  try {
    const { code, stderr } = cli(['demo', '--listen', `127.0.0.1:${port}`]);
    assert.equal(code, 1);
    const lines = stderr.trim().split('\n');
    assert.match(lines.at(-1) ?? '', new RegExp(`^kubesocks: 127\\.0\\.0\\.1:${port} is already in use .*--listen 127\\.0\\.0\\.1:0`));
  } finally {
    blocker.close();
  }
});

test('the demo removes its temporary directory (kubeconfig with a token) when it fails to start', async () => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const { port } = blocker.address() as AddressInfo;
  const scratch = mkdtempSync(join(tmpdir(), 'kubesocks-cli-test-'));
  try {
    const { code, stderr } = cli(['demo', '--listen', `127.0.0.1:${port}`], { TMPDIR: scratch });
    assert.equal(code, 1, stderr);
    assert.match(stderr, /kubeconfig .*kubesocks-demo-/, 'the demo got as far as writing its kubeconfig');
    assert.deepEqual(readdirSync(scratch).filter((name) => name.startsWith('kubesocks-')), [], 'nothing of ours left behind');
  } finally {
    blocker.close();
    rmSync(scratch, { recursive: true, force: true });
  }
});
