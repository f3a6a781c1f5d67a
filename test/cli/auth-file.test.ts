/**
 * `--auth-file FILE` (issue 9): the credentials out of the command line,
 * which every local user can read (`ps`). The file is checked as ssh checks
 * a private key: a regular file, owned by the user or root, no permission
 * bit for group or others — otherwise the CLI refuses to start with one line
 * saying the fix (exit 2). Then a real demo started with it: curl through
 * SOCKS5 and the HTTP proxy with the file's credentials, KUBESOCKS_AUTH
 * overridden, the password nowhere in the process's command line.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readAuthFile, resolveCredentials } from '../../src/cli/credentials.js';
import { startDemo, type DemoProcess } from '../helpers/e2e-demo.js';
import { Proc, cleanEnv, curl, findBinary } from '../helpers/e2e-procs.js';

const PASSWORD = 'pw with: colon and spaces';
const SECRET_LINE = `alice:${PASSWORD}`;

function cli(args: string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    encoding: 'utf8',
    env: cleanEnv({ KUBESOCKS_AUTH: '', ...env }),
    timeout: 30_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr.replace(/^npm warn.*\n/gm, '') };
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kubesocks-auth-file-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `content` to a new file in the scratch directory with `mode`; its path. */
function authFile(name: string, content: string, mode: number): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}

describe('kubesocks refuses an --auth-file others could read or change', () => {
  test('group- or world-readable or -writable: exit 2, one line with the fix, the password not shown', () => {
    for (const mode of [0o644, 0o620]) {
      const path = authFile(`loose-${mode.toString(8)}`, `${SECRET_LINE}\n`, mode);
      const { code, stderr } = cli(['--auth-file', path, '--kubeconfig', '/nonexistent']);
      assert.equal(code, 2, stderr);
      assert.equal(stderr, `kubesocks: --auth-file ${path}: permissions 0${mode.toString(8)} are too open, other users could read or change the password: chmod 600 ${path}\n`);
    }
  });

  test('a file of another user, a directory, a FIFO, no file: one line each, and a FIFO does not hang start-up', () => {
    const foreign = authFile('foreign', SECRET_LINE, 0o600);
    const cases: Array<[string, RegExp]> = [[join(dir, 'missing'), /: no such file$/]];
    if (process.getuid?.() === 0) {
      // As root the test can make a file another user owns.
      chownSync(foreign, 65534, 65534);
      cases.push([foreign, /: owned by another user \(uid 65534\); use a file of your own: chown 0 \S+ && chmod 600 \S+$/]);
    }
    const directory = join(dir, 'a-directory');
    mkdirSync(directory, { mode: 0o700 });
    cases.push([directory, /: not a regular file; write USER:PASSWORD in a file of its own \(chmod 600\)$/]);
    const mkfifo = findBinary('mkfifo');
    if (mkfifo) {
      const fifo = join(dir, 'fifo');
      spawnSync(mkfifo, ['-m', '600', fifo]);
      cases.push([fifo, /: not a regular file/]);
    }
    for (const [path, message] of cases) {
      const { code, stderr } = cli(['--auth-file', path, '--kubeconfig', '/nonexistent']);
      assert.equal(code, 2, `${path}: ${stderr}`);
      assert.equal(stderr.trim().split('\n').length, 1, stderr);
      assert.match(stderr.trim(), new RegExp(`^kubesocks: --auth-file ${path.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')}${message.source}`), stderr);
    }
    assert.ok(cases.length >= 3);
  });

  test('--auth with --auth-file is a usage error; a malformed file is told without its content', () => {
    const good = authFile('good', `${SECRET_LINE}\n`, 0o600);
    const both = cli(['--auth', 'a:b', '--auth-file', good]);
    assert.equal(both.code, 2);
    assert.equal(both.stderr, 'kubesocks: --auth and --auth-file both give the credentials: use one (prefer --auth-file, other local users can read a command line)\n');
    const noColon = authFile('no-colon', 'justasecretword\n', 0o600);
    const empty = authFile('empty', '\nalice:later-lines-do-not-count\n', 0o600);
    for (const [path, message] of [
      [noColon, 'its first line must be USER:PASSWORD'],
      [empty, 'the first line is empty; write USER:PASSWORD in it'],
    ] as const) {
      const { code, stderr } = cli(['--auth-file', path]);
      assert.equal(code, 2);
      assert.equal(stderr, `kubesocks: --auth-file ${path}: ${message}\n`);
    }
  });

  test('mode 600 or 400 passes (start-up goes on to the kubeconfig), also off loopback where credentials are required', () => {
    for (const mode of [0o600, 0o400]) {
      const path = authFile(`ok-${mode.toString(8)}`, `${SECRET_LINE}\n`, mode);
      const { code, stderr } = cli(['--auth-file', path, '--listen', '0.0.0.0:0', '--kubeconfig', '/nonexistent']);
      assert.equal(code, 1, stderr);
      assert.match(stderr, /\[CONFIG\]/);
    }
  });
});

describe('readAuthFile and the precedence of the sources', () => {
  test('every group or other bit is refused; the first line is read, CRLF or LF stripped; a symlink is judged by its target', () => {
    for (const bit of [0o040, 0o020, 0o010, 0o004, 0o002, 0o001]) {
      const path = authFile(`bit-${bit.toString(8)}`, SECRET_LINE, 0o600 | bit);
      assert.throws(() => readAuthFile(path), /are too open, .*: chmod 600 /, `mode ${(0o600 | bit).toString(8)}`);
    }
    assert.equal(readAuthFile(authFile('crlf', `${SECRET_LINE}\r\nsecond line\r\n`, 0o600)), SECRET_LINE);
    assert.equal(readAuthFile(authFile('no-newline', SECRET_LINE, 0o400)), SECRET_LINE);
    const target = authFile('link-target', SECRET_LINE, 0o644);
    symlinkSync(target, join(dir, 'link'));
    assert.throws(() => readAuthFile(join(dir, 'link')), /permissions 0644 are too open/);
    const spaced = authFile('with space', SECRET_LINE, 0o644);
    assert.throws(() => readAuthFile(spaced), new RegExp(`chmod 600 '${dir.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')}/with space'$`));
  });

  test('--auth or --auth-file win over KUBESOCKS_AUTH; the values are checked as the proxy will', () => {
    const file = authFile('precedence', `${SECRET_LINE}\n`, 0o600);
    const env = { KUBESOCKS_AUTH: 'bob:from-env' };
    assert.deepEqual(resolveCredentials({ 'auth-file': file }, env), { username: 'alice', password: PASSWORD });
    assert.deepEqual(resolveCredentials({ auth: 'carol:x' }, env), { username: 'carol', password: 'x' });
    assert.deepEqual(resolveCredentials({}, env), { username: 'bob', password: 'from-env' });
    assert.equal(resolveCredentials({}, {}), undefined);
    assert.throws(() => resolveCredentials({}, { KUBESOCKS_AUTH: 'nocolon' }), /^UsageError: KUBESOCKS_AUTH: expected USER:PASSWORD$/);
    const long = authFile('long', `alice:${'x'.repeat(300)}`, 0o600);
    assert.throws(() => resolveCredentials({ 'auth-file': long }), /--auth-file \S+: Expected `auth.password` to be 1 to 255 bytes long \(RFC 1929\), got 300/);
  });
});

describe('kubesocks demo --auth-file, with curl', () => {
  let demo: DemoProcess;
  let file: string;
  before(async () => {
    file = authFile('demo', `${SECRET_LINE}\n`, 0o600);
    demo = await startDemo(['--auth-file', file], { KUBESOCKS_AUTH: 'bob:from-env' });
  });
  after(async () => {
    demo?.proc.kill();
    await demo?.proc.closed;
  });

  test("the file's credentials work through SOCKS5 and the HTTP proxy; KUBESOCKS_AUTH's do not; ps does not show the password", async () => {
    const socks = await curl(['-o', '/dev/null', '-w', '%{http_code}', '-x', `socks5h://alice:${encodeURIComponent(PASSWORD)}@${demo.proxy}`, 'http://web.demo/']);
    assert.equal(socks.stdout, '200', socks.output);
    const http = await curl(['-o', '/dev/null', '-w', '%{http_code}', '--proxy-user', SECRET_LINE, '-x', `http://${demo.proxy}`, 'http://web.demo/']);
    assert.equal(http.stdout, '200', http.output);
    const fromEnv = await curl(['-o', '/dev/null', '-w', '%{http_code}', '--proxy-user', 'bob:from-env', '-x', `http://${demo.proxy}`, 'http://web.demo/']);
    assert.equal(fromEnv.stdout, '407', 'the file wins over KUBESOCKS_AUTH');
    const cmdline = readFileSync(`/proc/${demo.proc.pid}/cmdline`, 'utf8').split('\0').join(' ');
    assert.match(cmdline, /--auth-file /);
    assert.ok(!cmdline.includes(PASSWORD), cmdline);
    const status = new Proc(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'status', '--listen', demo.proxy, '--auth-file', file, '-o', 'json']);
    const exit = await status.settle(30_000);
    assert.equal(exit.code, 0, status.output);
    assert.equal((JSON.parse(status.stdout) as { auth: boolean }).auth, true);
  });
});

test('--help says the flag form is visible to other local users and names --auth-file and KUBESOCKS_AUTH', () => {
  const serve = cli(['serve', '--help']).stdout;
  assert.match(serve, /--auth USER:PASS +require these credentials; needed off loopback\. Other local users can\n +read a command line \(ps\): prefer --auth-file or KUBESOCKS_AUTH=USER:PASS\n/);
  assert.match(serve, /^ {2}--auth-file FILE +read USER:PASS from FILE's first line; FILE must be yours \(or root's\)$/m);
  assert.match(cli(['--help']).stdout, /--auth-file FILE/);
  assert.match(cli(['demo', '--help']).stdout, /--auth, --auth-file,/);
  assert.match(cli(['status', '--help']).stdout, /^ {2}--auth-file FILE /m);
});
