/**
 * The first name in a namespace never used before: the namespace check and
 * the namespace's lists go out together (one round trip to a remote API
 * server, not two in a row); a namespace that does not exist is reported as
 * such and leaves no watches behind.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { KubeClient } from '../../src/kube/client.js';
import { KubesocksError } from '../../src/errors.js';
import { Resolver, type ResolverClient } from '../../src/resolve/resolver.js';
import { startRemoteCluster } from '../helpers/remote-cluster.js';
import { podsBehindService } from '../helpers/sim.js';

/** Each direction's delay: a round trip is 2 × this, far above the processing time of one step. */
const DELAY_MS = 150;

/** The client, recording when each API path was first asked for (ms since `t0`). */
function recording(client: KubeClient): { source: ResolverClient; asked: Map<string, number>; t0: number } {
  const asked = new Map<string, number>();
  const t0 = performance.now();
  const source: ResolverClient = {
    get contextName() {
      return client.contextName;
    },
    get userName() {
      return client.userName;
    },
    get clusterServer() {
      return client.clusterServer;
    },
    get agent() {
      return client.agent;
    },
    get namespace() {
      return client.namespace;
    },
    requestOptions(method, path, headers) {
      const key = path.split('?')[0]!;
      if (!asked.has(key)) asked.set(key, performance.now() - t0);
      return client.requestOptions(method, path, headers);
    },
    invalidateCredentials: () => client.invalidateCredentials(),
  };
  return { source, asked, t0 };
}

test('the namespace check and the lists of a new namespace go out in the same round trip', async (t) => {
  const remote = await startRemoteCluster(podsBehindService('far', 'web', 1, 80, 'echo'), DELAY_MS);
  const client = await KubeClient.load({ kubeconfig: remote.kubeconfig });
  const { source, asked } = recording(client);
  const resolver = new Resolver(source, { namespace: 'default' });
  t.after(async () => {
    resolver.close();
    client.close();
    await remote.close();
  });

  const r = await resolver.resolve('web.far.svc.cluster.local', 80);
  assert.equal(r.kind, 'cluster');
  const namespaces = asked.get('/api/v1/namespaces');
  const services = asked.get('/api/v1/namespaces/far/services');
  assert.ok(namespaces !== undefined && services !== undefined, `asked: ${[...asked.keys()].join(', ')}`);
  // In a row they would be at least one round trip (2 × DELAY_MS) apart.
  assert.ok(Math.abs(services - namespaces) < DELAY_MS, `namespace list at ${namespaces.toFixed(0)} ms, services at ${services.toFixed(0)} ms`);
});

test('a namespace that does not exist is NOT_FOUND naming it, and its watches are dropped', async (t) => {
  const remote = await startRemoteCluster(podsBehindService('far', 'web', 1, 80, 'echo'), 1);
  const client = await KubeClient.load({ kubeconfig: remote.kubeconfig });
  const resolver = new Resolver(client, { namespace: 'default' });
  t.after(async () => {
    resolver.close();
    client.close();
    await remote.close();
  });
  await assert.rejects(resolver.resolve('web.nowhere.svc.cluster.local', 80), (err: unknown) => {
    assert.ok(err instanceof KubesocksError);
    assert.equal(err.code, 'NOT_FOUND');
    assert.match(err.message, /namespace "nowhere" does not exist/);
    return true;
  });
  // The namespace's watches stopped: after they would have re-listed, no connection stays busy with them.
  const r = await resolver.resolve('web.far.svc.cluster.local', 80);
  assert.equal(r.kind, 'cluster');
  assert.deepEqual(resolver.cachedNamespaces().sort(), ['far']);
});
