/**
 * Start-up needs few file descriptors. Under `ulimit -n 600` start-up once
 * died with a misleading `Cannot find package '…/oauth4webapi/index.js'`:
 * importing @kubernetes/client-node's index loads ~900 modules, and Node's
 * ESM loader opens a module graph's files concurrently, so it needed 700-900
 * descriptors (EMFILE while reading a package.json reads as "cannot find").
 * The kubeconfig is now read without that index (src/kube/lazy-kubeconfig.ts).
 *
 * Measured (lowest `ulimit -n` that still prints the ready line): the built,
 * bundled CLI 22 for `demo` and `serve` (Node alone holds ~20); under tsx
 * 38-40 (tsx's esbuild child needs a few more when its cache is cold);
 * `npm run demo` (tsc, then the built CLI) works under 64. Each case here
 * runs under `ulimit -n 64`, prints the ready line, serves a request and
 * stops cleanly.
 */
import * as assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { demoScenario } from '../../src/sim/scenario.js';
import { Proc, REPO_ROOT, cleanEnv, curl } from '../helpers/e2e-procs.js';
import { startTestCluster, type TestCluster } from '../helpers/sim.js';
import { TEST_TRANSPORT_ARGS } from '../helpers/transport.js';

const LIMIT = 64;
const BUILT_CLI = join(REPO_ROOT, 'dist/cli.js');

const entries: Record<'built' | 'source', string[]> = {
  built: [BUILT_CLI],
  source: ['--import', 'tsx', 'src/cli.ts'],
};

/** Runs `node ENTRY ARGS` under `ulimit -n LIMIT`, waits for the ready line, fetches web.demo through it, and stops it. */
async function startServeAndStop(entry: string[], args: string[]): Promise<{ port: number; descriptors: number }> {
  const command = [process.execPath, ...entry, ...args, '--listen', '127.0.0.1:0', ...TEST_TRANSPORT_ARGS];
  const proc = new Proc('bash', ['-c', `ulimit -n ${LIMIT} && exec "$@"`, 'bash', ...command], { cwd: REPO_ROOT, env: cleanEnv() });
  try {
    const ready = await proc.waitFor(/listening on 127\.0\.0\.1:(\d+)/, { stream: 'stderr', timeoutMs: 60_000 });
    const port = Number(ready[1]);
    const descriptors = readdirSync(`/proc/${proc.pid}/fd`).length;
    const res = await curl(['-x', `http://127.0.0.1:${port}`, 'http://web.demo/low-ulimit']);
    assert.equal(res.code, 0, res.output);
    assert.match(res.stdout, /^pod web-[0-2] path \/low-ulimit\n$/, res.output);
    proc.signal('SIGTERM');
    const exit = await proc.settle(10_000);
    assert.equal(exit.code, 0, proc.output);
    assert.doesNotMatch(proc.stderr, /EMFILE|too many open files|Cannot find/i, proc.output);
    return { port, descriptors };
  } finally {
    proc.kill();
  }
}

describe(`start-up under ulimit -n ${LIMIT}`, () => {
  let t: TestCluster;
  before(async () => {
    assert.ok(existsSync(BUILT_CLI), `${BUILT_CLI} is missing: run npm run build (npm test builds first)`);
    t = await startTestCluster(demoScenario());
  });
  after(() => t?.close());

  for (const [name, entry] of Object.entries(entries)) {
    test(`demo, ${name} (${entry.join(' ')}): ready, serves, stops`, async () => {
      const { descriptors } = await startServeAndStop(entry, ['demo']);
      console.log(`low-ulimit: demo ${name}: ${descriptors} descriptors open when ready`);
    });

    test(`serve, ${name}: ready, serves, stops`, async () => {
      const { descriptors } = await startServeAndStop(entry, ['serve', '--kubeconfig', t.kubeconfig]);
      console.log(`low-ulimit: serve ${name}: ${descriptors} descriptors open when ready`);
    });
  }
});
