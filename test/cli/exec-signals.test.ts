/**
 * `kubesocks exec` and signals: a `kill` aimed at kubesocks alone reaches the
 * program once; Ctrl-C typed at a terminal (which the terminal already sends
 * to the whole foreground group) also reaches it exactly once, not twice.
 * The terminal is a real pseudo-terminal made by util-linux `script`; the
 * proxy check is answered by a loopback server standing in for a running
 * kubesocks (exec only asks its /healthz).
 */
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { REPO_ROOT, cleanEnv, findBinary } from '../helpers/e2e-procs.js';

const scriptBin = findBinary('script');
if (process.env.CI === 'true' && !scriptBin) throw new Error('CI: util-linux script is needed for the exec signal tests');

let healthz: Server;
let port: number;
let scratch: string;

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'kubesocks-exec-signals-'));
  healthz = createServer((_req, res) => res.end('ok\n'));
  await new Promise<void>((resolve) => healthz.listen(0, '127.0.0.1', resolve));
  port = (healthz.address() as AddressInfo).port;
});

after(async () => {
  await new Promise<void>((resolve) => healthz.close(() => resolve()));
  rmSync(scratch, { recursive: true, force: true });
});

/**
 * A program that logs every SIGINT it gets and exits 3 on SIGTERM. Node
 * counts each delivery (bash would fold two SIGINTs that arrive while it
 * waits for a command into one trap).
 */
function trappingProgram(log: string, ready: string): string[] {
  const body = `
    const { appendFileSync, writeFileSync } = require('node:fs');
    process.on('SIGINT', () => appendFileSync(${JSON.stringify(log)}, 'INT\\n'));
    process.on('SIGTERM', () => { appendFileSync(${JSON.stringify(log)}, 'TERM\\n'); process.exit(3); });
    writeFileSync(${JSON.stringify(ready)}, 'up');
    setInterval(() => {}, 1000);`;
  return [process.execPath, '-e', body];
}

function execArgv(program: string[]): string[] {
  return ['--import', 'tsx', 'src/cli.ts', 'exec', '--no-proxychains', '--listen', `127.0.0.1:${port}`, '--', ...program];
}

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

test('a SIGINT sent to kubesocks exec alone reaches the program once; SIGTERM ends it with its own exit code', async () => {
  const log = join(scratch, 'kill.log');
  const ready = join(scratch, 'kill.ready');
  // detached: a session of its own, no controlling terminal, as under a supervisor.
  const child = spawn(process.execPath, execArgv(trappingProgram(log, ready)), { cwd: REPO_ROOT, env: cleanEnv(), detached: true, stdio: 'ignore' });
  try {
    await waitFor('the program to start', () => existsSync(ready));
    child.kill('SIGINT');
    await waitFor('the SIGINT to reach the program', () => lines(log).length >= 1);
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(lines(log), ['INT']);
    child.kill('SIGTERM');
    assert.equal(await exited(child), 3);
    assert.deepEqual(lines(log), ['INT', 'TERM']);
  } finally {
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
  }
});

test('Ctrl-C typed at a terminal reaches the program once, not twice', { skip: !scriptBin && 'util-linux script is missing' }, async () => {
  const log = join(scratch, 'tty.log');
  const ready = join(scratch, 'tty.ready');
  const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;
  const command = [process.execPath, ...execArgv(trappingProgram(log, ready))].map(quote).join(' ');
  // script runs the command on a new pseudo-terminal and copies our stdin to
  // it, so the byte 0x03 is the user's Ctrl-C, turned into SIGINT for the
  // terminal's foreground group by the kernel's line discipline.
  const term = spawn(scriptBin!, ['-qec', command, '/dev/null'], { cwd: REPO_ROOT, env: cleanEnv({ TERM: 'xterm' }), detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
  try {
    await waitFor('the program to start', () => existsSync(ready));
    term.stdin!.write('\x03');
    await waitFor('the Ctrl-C to reach the program', () => lines(log).length >= 1);
    await new Promise((r) => setTimeout(r, 1000));
    console.error('LOG', lines(log)); assert.deepEqual(lines(log), ['INT'], 'the program got Ctrl-C from the terminal and again from kubesocks');
  } finally {
    process.kill(-term.pid!, 'SIGKILL');
    await exited(term);
    // The pty's processes are in their own session: end them by their marker file's program.
    spawn('pkill', ['-KILL', '-f', ready]).on('error', () => {});
  }
});
