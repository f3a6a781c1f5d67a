/**
 * `kubesocks status` as a person runs it (the CLI through tsx) against a
 * running `kubesocks demo --auth …`: the table names the context, the pod
 * and the open connection; `-o json` is /status.json; missing credentials,
 * no proxy at all and a bad flag each get one line saying what to do.
 */
import * as assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { StatusSnapshot } from '../../src/observe/status.js';
import { startDemo, type DemoProcess } from '../helpers/e2e-demo.js';
import { Proc, cleanEnv } from '../helpers/e2e-procs.js';
import { roundTrip } from '../helpers/socks-client.js';

const AUTH = 'ops:pa55word';

async function run(args: string[], env: Record<string, string> = {}): Promise<Proc> {
  const proc = new Proc(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'status', ...args], { env: cleanEnv(env) });
  const exit = await proc.settle(30_000);
  assert.equal(exit.timedOut, false, proc.output);
  return proc;
}

describe('kubesocks status', () => {
  let demo: DemoProcess;
  let socket: Socket;

  before(async () => {
    demo = await startDemo(['--auth', AUTH]);
    const { SocksClient } = await import('socks');
    ({ socket } = await SocksClient.createConnection({
      proxy: { host: '127.0.0.1', port: demo.port, type: 5, userId: 'ops', password: 'pa55word' },
      command: 'connect',
      destination: { host: 'echo.demo', port: 7 },
      timeout: 10_000,
    }));
    await roundTrip(socket, Buffer.from('hello'));
  });

  after(async () => {
    socket?.destroy();
    demo?.proc.kill();
    await demo?.proc.closed;
  });

  test('prints contexts, pods and the open connection as tables', async () => {
    const proc = await run(['--listen', demo.proxy, '--auth', AUTH]);
    assert.equal(proc.exit?.code, 0, proc.output);
    const out = proc.stdout;
    assert.match(out, new RegExp(`^kubesocks \\S+ on ${demo.proxy.replace(/\./g, '\\.')}, transport (auto|spdy|websocket), up since `));
    assert.match(out, /^Contexts:\n {2}CONTEXT +API SERVER +USER +REACHABLE +LAST ERROR +NAMESPACES WATCHED\n {2}kubesocks-sim +https:\/\/127\.0\.0\.1:\d+ +admin +yes +— +demo$/m);
    assert.match(out, /^ {2}kubesocks-sim +demo +echo-[01] +(spdy|websocket) +1 +1 +1 +5 B +5 B +/m);
    assert.match(out, /^Open connections:\n {2}CLIENT .*\n {2}127\.0\.0\.1:\d+ +socks5 +echo\.demo:7 +demo\/echo-[01]:7 +5 B +5 B +/m);
    assert.match(out, /^Totals: 1 open, 1 connections, 0 failed, /m);
    assert.equal(proc.stderr, '');
  });

  test('-o json prints /status.json; KUBESOCKS_AUTH stands in for --auth', async () => {
    const proc = await run(['--listen', demo.proxy, '-o', 'json'], { KUBESOCKS_AUTH: AUTH });
    assert.equal(proc.exit?.code, 0, proc.output);
    const snapshot = JSON.parse(proc.stdout) as StatusSnapshot;
    assert.equal(snapshot.schema, 1);
    assert.equal(snapshot.auth, true);
    assert.equal(snapshot.connections[0]?.target, 'echo.demo:7');
    assert.ok(!proc.stdout.includes('pa55word'), 'the password is not printed');
  });

  test('without the credentials, one line says to pass --auth-file or --auth', async () => {
    const proc = await run(['--listen', demo.proxy]);
    assert.equal(proc.exit?.code, 1);
    assert.equal(proc.stderr, `kubesocks: the proxy on ${demo.proxy} requires credentials: pass --auth-file FILE or --auth USER:PASS (or set KUBESOCKS_AUTH)\n`);
    const wrong = await run(['--listen', demo.proxy, '--auth', 'ops:nope']);
    assert.match(wrong.stderr, /requires credentials and refused these/);
  });

  test('no proxy there, or a bad flag: one line saying what to do', async () => {
    const { createServer } = await import('node:net');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const none = await run(['--listen', `127.0.0.1:${port}`]);
    assert.equal(none.exit?.code, 1);
    assert.equal(none.stderr, `kubesocks: no kubesocks proxy answers on 127.0.0.1:${port}: start one with "kubesocks", or pass --listen HOST:PORT of the running one\n`);
    const bad = await run(['-o', 'yaml']);
    assert.equal(bad.exit?.code, 2);
    assert.equal(bad.stderr, 'kubesocks: -o: expected "table" or "json", got "yaml"\n');
  });
});
