/**
 * A real Prometheus (Debian's `prometheus` package) scrapes `/metrics` of
 * `kubesocks demo --auth …` with basic_auth every second: the target is up,
 * and the counters it stored are the ones the proxy counted.
 */
import * as assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDemo, type DemoProcess } from '../helpers/e2e-demo.js';
import { Proc, findBinary } from '../helpers/e2e-procs.js';
import { roundTrip, socksConnect } from '../helpers/socks-client.js';

const prometheus = findBinary('prometheus', '/usr/bin/prometheus');
const AUTH = { username: 'prom', password: 'scrape-secret' };

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

interface QueryResult {
  status: string;
  data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

describe('a real Prometheus scrapes /metrics', { skip: !prometheus && 'prometheus is not installed' }, () => {
  let demo: DemoProcess;
  let prom: Proc;
  let dir: string;
  let webPort: number;

  before(async () => {
    demo = await startDemo(['--auth', `${AUTH.username}:${AUTH.password}`]);
    dir = await mkdtemp(join(tmpdir(), 'kubesocks-prometheus-'));
    const config = join(dir, 'prometheus.yml');
    await writeFile(
      config,
      [
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 1s',
        'scrape_configs:',
        '  - job_name: kubesocks',
        '    basic_auth:',
        `      username: ${AUTH.username}`,
        `      password: ${AUTH.password}`,
        '    static_configs:',
        `      - targets: ['127.0.0.1:${demo.port}']`,
        '',
      ].join('\n'),
    );
    webPort = await freePort();
    prom = new Proc(prometheus ?? 'prometheus', [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${webPort}`,
      '--log.level=warn',
    ]);
  });

  after(async () => {
    prom?.kill();
    await prom?.closed;
    demo?.proc.kill();
    await demo?.proc.closed;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function query(expr: string): Promise<QueryResult['data']['result']> {
    const res = await fetch(`http://127.0.0.1:${webPort}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as QueryResult;
    assert.equal(body.status, 'success');
    return body.data.result;
  }

  /** Polls a query until `check` holds (Prometheus starts, then scrapes every second). */
  async function until(expr: string, check: (r: QueryResult['data']['result']) => boolean, timeoutMs = 20_000): Promise<QueryResult['data']['result']> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown = 'no answer';
    for (;;) {
      try {
        const result = await query(expr);
        if (check(result)) return result;
        last = result;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline) assert.fail(`${expr}: ${JSON.stringify(last)}\nprometheus: ${prom.stderr.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  test('the target is up (with basic_auth) and the scraped counters follow the connections made', async (t) => {
    const started = performance.now();
    await until('up{job="kubesocks"}', (r) => r[0]?.value[1] === '1');
    const build = await until('kubesocks_build_info', (r) => r.length === 1);
    // The transport asked for (`auto` by default: WebSockets first, then SPDY).
    assert.match(String(build[0]?.metric.transport), /^(auto|spdy|websocket)$/);

    for (let i = 0; i < 3; i++) {
      // SOCKS through the --auth proxy needs the credentials too.
      const socket = await socksConnectWithAuth(demo.port);
      assert.equal((await roundTrip(socket, Buffer.from('abc'))).toString(), 'abc');
      socket.destroy();
    }
    await until('kubesocks_connections_total{protocol="socks5",result="ok"}', (r) => Number(r[0]?.value[1]) === 3);
    await until('kubesocks_proxied_bytes_total{direction="up"}', (r) => Number(r[0]?.value[1]) >= 9);
    await until('kubesocks_connect_duration_seconds_count{result="ok"}', (r) => Number(r[0]?.value[1]) >= 3);
    // Timing is reported, not asserted (the machine may be loaded); it ran in ~10 s alone.
    t.diagnostic(`Prometheus start to counters seen: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  });
});

async function socksConnectWithAuth(port: number): ReturnType<typeof socksConnect> {
  const { SocksClient } = await import('socks');
  const { socket } = await SocksClient.createConnection({
    proxy: { host: '127.0.0.1', port, type: 5, userId: AUTH.username, password: AUTH.password },
    command: 'connect',
    destination: { host: 'echo.demo', port: 7 },
    timeout: 10_000,
  });
  return socket;
}
