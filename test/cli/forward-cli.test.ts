/**
 * `kubesocks forward` as a person runs it: kubectl's up-front checks and
 * messages (a namespace that does not exist, a service port the service does
 * not have) and kubectl's `Forwarding from … -> TARGETPORT` lines.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Proc, REPO_ROOT, cleanEnv, run } from '../helpers/e2e-procs.js';
import { startTestCluster, type TestCluster } from '../helpers/sim.js';

describe('kubesocks forward: checks and lines like kubectl', () => {
  let t: TestCluster;
  before(async () => {
    t = await startTestCluster();
  });
  after(() => t.close());

  const forward = (args: string[]) =>
    run(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'forward', '--kubeconfig', t.kubeconfig, ...args], { cwd: REPO_ROOT, env: cleanEnv(), timeoutMs: 30_000 });

  /** Starts a forward, returns its "Forwarding from" lines, and stops it. */
  async function forwardingLines(args: string[]): Promise<string[]> {
    const proc = new Proc(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'forward', '--kubeconfig', t.kubeconfig, '--address', '127.0.0.1', ...args], { cwd: REPO_ROOT, env: cleanEnv() });
    try {
      await proc.waitFor(/Forwarding from .*\n/, { timeoutMs: 30_000 });
      return proc.stdout.trim().split('\n');
    } finally {
      proc.signal('SIGTERM');
      await proc.settle(10_000);
    }
  }

  test('a namespace that does not exist is named as such', async () => {
    const res = await forward(['-n', 'nosuchns', 'svc/web', '80']);
    assert.equal(res.code, 1);
    assert.equal(res.stderr.trim(), 'kubesocks: namespaces "nosuchns" not found (see kubectl get namespaces) [NOT_FOUND]');
  });

  test('a service that does not exist in an existing namespace keeps the API server\'s message', async () => {
    const res = await forward(['-n', 'demo', 'svc/nosuch', '80']);
    assert.equal(res.code, 1);
    assert.match(res.stderr.trim(), /^kubesocks: services "nosuch" not found.*\[NOT_FOUND\]$/);
  });

  test('a service port the service does not have is refused at start', async () => {
    const res = await forward(['-n', 'demo', 'svc/web', '8081:81']);
    assert.equal(res.code, 1);
    assert.equal(res.stderr.trim(), 'kubesocks: Service web does not have a service port 81 (its ports: 80 (http)) [NO_SUCH_PORT]');
  });

  test('Forwarding lines name the port inside the pod: a service\'s named targetPort, a pod\'s named port', async () => {
    assert.deepEqual(
      (await forwardingLines(['-n', 'demo', 'svc/web', '0:80'])).map((l) => l.replace(/:\d+ ->/, ':PORT ->')),
      ['Forwarding from 127.0.0.1:PORT -> 8080'],
    );
    assert.deepEqual(
      (await forwardingLines(['-n', 'demo', 'pod/web-0', '0:http'])).map((l) => l.replace(/:\d+ ->/, ':PORT ->')),
      ['Forwarding from 127.0.0.1:PORT -> 8080'],
    );
  });
});
