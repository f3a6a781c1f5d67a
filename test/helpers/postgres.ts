/**
 * A throwaway PostgreSQL server on 127.0.0.1 for tests that need a real
 * database behind a simulated pod: initdb into a scratch directory and
 * pg_ctl, run as the `postgres` user (the server refuses to run as root).
 */
import * as assert from 'node:assert/strict';
import { chownSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary, run } from './e2e-procs.js';

export const PG_BIN = (() => {
  try {
    const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
    return versions[0] ? `/usr/lib/postgresql/${versions[0]}/bin` : undefined;
  } catch {
    return undefined;
  }
})();
const runuser = findBinary('runuser');

/** Why a real PostgreSQL cannot run here, or undefined. */
export const postgresUnavailable: string | undefined =
  !PG_BIN || !findBinary('psql') ? 'PostgreSQL (server and psql) is not installed' : process.getuid?.() !== 0 || !runuser ? 'starting PostgreSQL as its own user needs root and runuser' : undefined;

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A throwaway PostgreSQL server on 127.0.0.1, run as the `postgres` user (it refuses root). */
export class PostgresServer {
  readonly dir = mkdtempSync(join(tmpdir(), 'kubesocks-pg-'));
  port = 0;

  async start(): Promise<void> {
    chownSync(this.dir, uidOf('postgres'), -1);
    const asPostgres = (file: string, args: string[]) => run(runuser!, ['-u', 'postgres', '--', join(PG_BIN!, file), ...args], { timeoutMs: 60_000 });
    const init = await asPostgres('initdb', ['-D', join(this.dir, 'data'), '-A', 'trust', '-U', 'postgres']);
    assert.equal(init.code, 0, init.stderr);
    this.port = await freePort();
    const options = `-c listen_addresses=127.0.0.1 -c port=${this.port} -c unix_socket_directories=${this.dir}`;
    const start = await asPostgres('pg_ctl', ['-D', join(this.dir, 'data'), '-o', options, '-l', join(this.dir, 'log'), '-w', 'start']);
    assert.equal(start.code, 0, start.stderr);
  }

  async stop(): Promise<void> {
    await run(runuser!, ['-u', 'postgres', '--', join(PG_BIN!, 'pg_ctl'), '-D', join(this.dir, 'data'), '-m', 'immediate', 'stop'], { timeoutMs: 30_000 });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function uidOf(user: string): number {
  const line = new RegExp(`^${user}:[^:]*:(\\d+):`, 'm').exec(readFileSync('/etc/passwd', 'utf8'));
  if (!line) throw new Error(`no user ${user}`);
  return Number(line[1]);
}

