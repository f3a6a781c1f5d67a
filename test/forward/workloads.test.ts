/**
 * `kubesocks forward` to apps/v1 workloads of the simulated cluster:
 * `deploy/web` and `sts/db` resolve their selector through the API, spread
 * connections over the ready pods, keep working when a pod is deleted, and
 * honour --pod-running-timeout.
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Dialer } from '../../src/dialer/dialer.js';
import { KubesocksError } from '../../src/errors.js';
import { parseResource } from '../../src/cli/forward-spec.js';
import { ForwardTarget } from '../../src/forward/forward-target.js';
import type { ScenarioPod } from '../../src/sim/types.js';
import { httpVia, startForwardRig, type ForwardRig } from '../helpers/forward-rig.js';
import type { TestCluster } from '../helpers/sim.js';


/** A long-lived connection to an echo pod through the forward. */
interface EchoConnection {
  socket: net.Socket;
  /** Sends `text`, resolves with what came back once it is all there. */
  roundTrip(text: string): Promise<string>;
  closed: Promise<void>;
}

function echoVia(port: number): Promise<EchoConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setEncoding('utf8');
    socket.on('error', () => {});
    let received = '';
    let waiting: { length: number; done: (text: string) => void } | undefined;
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (waiting && received.length >= waiting.length) {
        const { done, length } = waiting;
        waiting = undefined;
        const text = received.slice(0, length);
        received = received.slice(length);
        done(text);
      }
    });
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    socket.once('connect', () =>
      resolve({
        socket,
        closed,
        roundTrip: (text) =>
          new Promise((done, fail) => {
            waiting = { length: text.length, done };
            closed.then(() => fail(new Error(`closed before the echo of ${text}`)), () => {});
            socket.write(text);
          }),
      }),
    );
    socket.once('error', reject);
  });
}

function pod(name: string, app: string, ip: string, ready: boolean, port: number, backend: string): ScenarioPod {
  return { name, namespace: 'demo', labels: { app }, ip, ready, ports: [{ name: 'main', containerPort: port, backend }] };
}

describe('forward to deployments and statefulsets', () => {
  let rig: ForwardRig;
  let t: TestCluster;
  let dialer: Dialer;
  let errors: string[];
  const start = (resource: string, port: string, timeoutMs?: number) => rig.start(resource, port, timeoutMs);

  before(async () => {
    rig = await startForwardRig();
    ({ cluster: t, dialer, errors } = rig);
  });
  after(() => rig.close());

  test('deploy/web :8080 spreads connections over the ready pods (web-3 is not ready)', async () => {
    const { port } = await start('deploy/web', ':8080');
    const pods = new Set<string>();
    for (let i = 0; i < 9; i++) pods.add(/^pod (\S+) path \/r\d\n$/m.exec(await httpVia(port, `/r${i}`))?.[1] ?? '?');
    assert.deepEqual([...pods].sort(), ['web-0', 'web-1', 'web-2']);
  });

  test('deploy/web 0:http: a named container port of the selected pods', async () => {
    const listening = await start('deployment.apps/web', '0:http');
    assert.match(await httpVia(listening.port, '/named'), /pod web-[012] path \/named/);
  });

  test('deploy/web survives deleting a pod: new connections reach the others, none fails', async () => {
    const { port } = await start('deploy/web', ':8080');
    assert.match(await httpVia(port, '/before'), /pod web-/);
    const errorsBefore = errors.length;
    const web1 = { name: 'web-1', namespace: 'demo', labels: { app: 'web' }, ip: '10.244.0.11', ports: [{ name: 'http', containerPort: 8080, backend: 'http' }] };
    t.cluster.deletePod('demo', 'web-1');
    try {
      const pods = new Set<string>();
      for (let i = 0; i < 8; i++) pods.add(/pod (\S+)/.exec(await httpVia(port, `/after${i}`))?.[1] ?? 'failed');
      assert.deepEqual([...pods].sort(), ['web-0', 'web-2']);
      // Connections still open on web-1 when it went fail ("error forwarding connection … via demo/web-1");
      // no new connection may fail ("error forwarding port …"): a stale pod list fails over to another pod.
      assert.deepEqual(
        errors.slice(errorsBefore).filter((line) => line.startsWith('error forwarding port')),
        [],
      );
    } finally {
      t.cluster.addPod(web1);
    }
  });

  test('sts/db :5432 spreads over db-0 and db-1; deleting db-0 ends only its connections', async () => {
    const { port } = await start('sts/db', ':5432');
    const connections = [];
    for (let i = 0; i < 4; i++) connections.push(await echoVia(port));
    for (const [i, c] of connections.entries()) assert.equal(await c.roundTrip(`hello ${i}\n`), `hello ${i}\n`);

    const db0 = { name: 'db-0', namespace: 'demo', labels: { app: 'db' }, ip: '10.244.0.30', hostname: 'db-0', subdomain: 'db', ports: [{ name: 'postgres', containerPort: 5432, backend: 'echo' }] };
    t.cluster.deletePod('demo', 'db-0');
    try {
      const outcome = await Promise.all(
        connections.map((c) => Promise.race([c.closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('open'), 1000))])),
      );
      assert.deepEqual(
        [...outcome].sort(),
        ['closed', 'closed', 'open', 'open'],
        'round-robin put two connections on each pod; those on db-0 went with it',
      );
      for (const [i, c] of connections.entries()) {
        if (outcome[i] === 'open') assert.equal(await c.roundTrip(`still ${i}\n`), `still ${i}\n`);
      }
      // New connections reach db-1 (a cached pod list naming db-0 fails over).
      for (let i = 0; i < 3; i++) {
        const c = await echoVia(port);
        assert.equal(await c.roundTrip(`new ${i}\n`), `new ${i}\n`);
        c.socket.destroy();
      }
    } finally {
      for (const c of connections) c.socket.destroy();
      t.cluster.addPod(db0);
    }
  });

  test('rs/NAME added at run time is forwarded too', async () => {
    t.cluster.addWorkload('replicasets', { name: 'echo-5f6d7c8b9', namespace: 'demo', selector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['echo'] }] }, replicas: 2 });
    const { port } = await start('rs/echo-5f6d7c8b9', ':7');
    const c = await echoVia(port);
    assert.equal(await c.roundTrip('through a replica set\n'), 'through a replica set\n');
    c.socket.destroy();
  });

  test('--pod-running-timeout: a deployment whose pods are all not ready fails after the timeout', async () => {
    t.cluster.addPod(pod('stuck-0', 'stuck', '10.244.0.70', false, 8080, 'http'));
    t.cluster.addPod(pod('stuck-1', 'stuck', '10.244.0.71', false, 8080, 'http'));
    t.cluster.addWorkload('deployments', { name: 'stuck', namespace: 'demo', selector: { matchLabels: { app: 'stuck' } }, replicas: 2 });
    const target = new ForwardTarget(dialer, 'demo', parseResource('deploy/stuck'));
    const started = Date.now();
    await assert.rejects(target.waitUntilReady(300), (error: unknown) => {
      assert.ok(error instanceof KubesocksError);
      assert.equal(error.code, 'POD_NOT_RUNNING');
      assert.match(error.message, /deployment\/stuck in namespace demo has no running pod/);
      return true;
    });
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 250 && elapsed < 5000, `gave up after ${elapsed} ms`);

    // A pod that turns ready within the timeout is waited for.
    const waiting = target.waitUntilReady(10_000);
    setTimeout(() => t.cluster.setPodReady('demo', 'stuck-1', true), 300);
    await waiting;
    const { port } = await start('deploy/stuck', ':8080');
    assert.match(await httpVia(port, '/ready'), /pod stuck-1 path \/ready/);
  });

  test('a workload that does not exist fails at once with the API server\'s message', async () => {
    const target = new ForwardTarget(dialer, 'demo', parseResource('sts/nope'));
    await assert.rejects(target.waitUntilReady(5000), (error: unknown) => {
      assert.ok(error instanceof KubesocksError);
      assert.equal(error.code, 'NOT_FOUND');
      assert.match(error.message, /statefulsets\.apps "nope" not found/);
      return true;
    });
  });
});
