/**
 * The examples/ programs run against the simulated cluster, and the
 * node-postgres integration (its `stream` option) works through the dialer.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { createDialer, type Dialer } from '../../src/dialer/dialer.js';
import { demoScenario } from '../../src/sim/scenario.js';
import { startFakePostgres } from '../helpers/fake-postgres.js';
import { startTestCluster, type TestCluster } from '../helpers/sim.js';

const run = promisify(execFile);

describe('examples and integrations', () => {
  let t: TestCluster;
  let dialer: Dialer;
  let postgres: Awaited<ReturnType<typeof startFakePostgres>>;

  before(async () => {
    postgres = await startFakePostgres('postgres-0');
    const scenario = demoScenario();
    scenario.namespaces = [...(scenario.namespaces ?? []), 'db'];
    scenario.pods.push({
      name: 'postgres-0',
      namespace: 'db',
      labels: { app: 'postgres' },
      ip: '10.244.5.10',
      phase: 'Running',
      ready: true,
      ports: [{ name: 'pg', containerPort: 5432, backend: `127.0.0.1:${postgres.port}` }],
    });
    scenario.services.push({ name: 'postgres', namespace: 'db', selector: { app: 'postgres' }, ports: [{ name: 'pg', port: 5432, targetPort: 'pg' }] });
    t = await startTestCluster(scenario);
    dialer = await createDialer({ kubeconfig: t.kubeconfig });
  });
  after(async () => {
    await dialer.close();
    await t.close();
    await postgres.close();
  });

  test('node-postgres connects and queries through dialer.socket() (its stream option)', async () => {
    const client = new pg.Client({ stream: () => dialer.socket('postgres.db.svc.cluster.local:5432'), user: 'app', database: 'app' });
    await client.connect();
    const result = await client.query('select version() as version');
    assert.equal(result.rows[0]?.version, 'PostgreSQL 16.0 (fake, pod postgres-0)');
    await client.end();
  });

  for (const [example, arg, expected] of [
    ['examples/raw-socket.ts', 'echo.demo:7', /connected to echo\.demo:7 via demo\/echo-[01]:7\nhello from kubesocks/],
    ['examples/http-agent.ts', 'http://web.demo/agent', /200 pod web-[0-2] path \/agent/],
    ['examples/postgres.ts', 'postgres.db:5432', /PostgreSQL 16\.0 \(fake, pod postgres-0\)/],
  ] as const) {
    test(`${example} runs against the simulated cluster`, { skip: !existsSync('dist/index.js') && 'needs `npm run build` (npm test builds first)' }, async () => {
      const { stdout } = await run(process.execPath, ['--import', 'tsx', example, arg], {
        env: { ...process.env, KUBECONFIG: t.kubeconfig },
        timeout: 30_000,
      });
      assert.match(stdout, expected);
    });
  }
});
