/**
 * `kubesocks forward`: kubectl port-forward's interface, re-resolving per
 * connection, never ending on a refused connection.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createServer } from 'node:net';
import { KubesocksError } from '../../src/errors.js';
import { httpVia, startForwardRig, type ForwardRig } from '../helpers/forward-rig.js';
import type { TestCluster } from '../helpers/sim.js';

describe('forward against the simulated cluster', () => {
  let rig: ForwardRig;
  let t: TestCluster;
  let errors: string[];
  const start = (resource: string, port: string, timeoutMs?: number) => rig.start(resource, port, timeoutMs);

  before(async () => {
    rig = await startForwardRig();
    ({ cluster: t, errors } = rig);
  });
  after(() => rig.close());

  test('svc/web :80 spreads connections over the ready pods (named targetPort http)', async () => {
    const { port } = await start('svc/web', ':80');
    const pods = new Set<string>();
    for (let i = 0; i < 9; i++) pods.add(/pod (\S+)/.exec(await httpVia(port, `/r${i}`))?.[1] ?? '?');
    assert.deepEqual([...pods].sort(), ['web-0', 'web-1', 'web-2']);
  });

  test('a refused connection never ends the forward; the next one still works', async () => {
    const refused = await start('pod/web-0', ':9090');
    const before = errors.length;
    assert.equal(await httpVia(refused.port, '/'), '');
    assert.equal(errors.length, before + 1);
    assert.match(errors.at(-1)!, /connection refused/);
    const ok = await start('pod/web-0', ':8080');
    assert.match(await httpVia(ok.port, '/still'), /pod web-0 path \/still/);
    assert.equal(await httpVia(refused.port, '/'), '', 'the refused forward still accepts and fails cleanly');
  });

  test('a deleted pod target makes new connections fail clearly while the command keeps running', async () => {
    const { port } = await start('pod/lonely', ':8080');
    assert.match(await httpVia(port, '/a'), /pod lonely/);
    t.cluster.deletePod('demo', 'lonely');
    const before = errors.length;
    assert.equal(await httpVia(port, '/b'), '');
    assert.match(errors.slice(before).join('\n'), /lonely/);
    t.cluster.addPod({ name: 'lonely', namespace: 'demo', ip: '10.244.0.99', phase: 'Running', ready: true, ports: [{ name: 'http', containerPort: 8080 }] });
    assert.match(await httpVia(port, '/c'), /pod lonely path \/c/, 'a pod recreated under the same name is reached again');
  });

  test('named service ports and a service port that does not exist', async () => {
    const { port } = await start('svc/web', '0:http');
    assert.match(await httpVia(port, '/named'), /path \/named/);
    await assert.rejects(start('svc/web', '0:nope'), /Service web does not have a service port named "nope"/);
    await assert.rejects(start('svc/web', '0:81'), /Service web does not have a service port 81/);
  });

  test('a local port in use on every address: start() rejects LISTEN_FAILED naming the port', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const { port } = busy.address() as { port: number };
    try {
      await assert.rejects(start('svc/web', `${port}:80`), (err: unknown) => {
        assert.ok(err instanceof KubesocksError, String(err));
        assert.equal(err.code, 'LISTEN_FAILED');
        assert.match(err.message, new RegExp(`unable to listen on any of the requested ports for ${port}:80: 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
        return true;
      });
    } finally {
      await new Promise<void>((resolve) => busy.close(() => resolve()));
    }
  });
});
