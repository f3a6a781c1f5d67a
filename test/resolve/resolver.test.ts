import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { KubeClient } from '../../src/kube/client.js';
import { Resolver, type Resolution, type ResolverOptions } from '../../src/resolve/resolver.js';
import { KubesocksError } from '../../src/errors.js';
import { startTestCluster, type TestCluster } from '../helpers/sim.js';

let sim: TestCluster;
const clients: KubeClient[] = [];
const resolvers: Resolver[] = [];

before(async () => {
  sim = await startTestCluster();
});

after(async () => {
  for (const r of resolvers) r.close();
  for (const c of clients) c.close();
  await sim.close();
});

async function resolver(opts: ResolverOptions = {}, user?: string): Promise<Resolver> {
  const kubeconfig = user ? await sim.kubeconfigFor(user) : sim.kubeconfig;
  const client = await KubeClient.load({ kubeconfig });
  clients.push(client);
  const r = new Resolver(client, { backoffMs: 20, maxBackoffMs: 100, ...opts });
  resolvers.push(r);
  return r;
}

function pods(r: Resolution): string[] {
  assert.equal(r.kind, 'cluster');
  return r.kind === 'cluster' ? r.candidates.map((c) => `${c.namespace}/${c.pod}:${c.port}`).sort() : [];
}

async function rejects(p: Promise<unknown>, code: string, re?: RegExp): Promise<KubesocksError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof KubesocksError, String(err));
    assert.equal(err.code, code, err.message);
    if (re) assert.match(err.message, re);
    return err;
  }
  assert.fail(`expected ${code}`);
}

async function eventually(fn: () => Promise<void>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      await fn();
      return;
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

const WEB = ['demo/web-0:8080', 'demo/web-1:8080', 'demo/web-2:8080'];

test('every name form resolves', async () => {
  const r = await resolver();
  // Service names: the named targetPort http → 8080; web-3 (not ready) never offered.
  for (const name of ['web.demo', 'web.demo.svc', 'web.demo.svc.cluster.local', 'WEB.demo.svc.cluster.local.', 'web']) {
    assert.deepEqual(pods(await r.resolve(name, 80)), WEB, name);
  }
  // Headless: per hostname, and the whole service; the port is the pod's.
  assert.deepEqual(pods(await r.resolve('db-0.db.demo.svc.cluster.local', 5432)), ['demo/db-0:5432']);
  assert.deepEqual(pods(await r.resolve('db-1.db.demo.svc', 5432)), ['demo/db-1:5432']);
  assert.deepEqual(pods(await r.resolve('db.demo', 5432)), ['demo/db-0:5432', 'demo/db-1:5432']);
  // Pod forms use the port as given.
  assert.deepEqual(pods(await r.resolve('10-244-0-10.demo.pod.cluster.local', 8080)), ['demo/web-0:8080']);
  assert.deepEqual(pods(await r.resolve('lonely.demo', 8080)), ['demo/lonely:8080']);
  assert.deepEqual(pods(await r.resolve('lonely', 8080)), ['demo/lonely:8080']);
  // IP literals: a ClusterIP maps the service port; a pod IP is the pod.
  assert.deepEqual(pods(await r.resolve('10.96.100.10', 80)), WEB);
  assert.deepEqual(pods(await r.resolve('10.244.0.40', 8080)), ['demo/lonely:8080']);
  // Another namespace, found by IP through the cluster-wide list, and by name.
  assert.deepEqual(pods(await r.resolve('10.244.1.10', 8080)), ['other/api-0:8080']);
  assert.deepEqual(pods(await r.resolve('10.96.200.10', 80)), ['other/api-0:8080']);
  assert.deepEqual(pods(await r.resolve('api.other', 80)), ['other/api-0:8080']);
  // Outside names.
  assert.deepEqual(await r.resolve('docs.demo', 443), { kind: 'external', host: 'example.com', port: 443 });
  assert.deepEqual(await r.resolve('github.com', 443), { kind: 'external', host: 'github.com', port: 443 });
  assert.deepEqual(await r.resolve('8.8.8.8', 53), { kind: 'external', host: '8.8.8.8', port: 53 });
  assert.deepEqual(await r.resolve('10.1.2.3', 80), { kind: 'external', host: '10.1.2.3', port: 80 });

  const res = await r.resolve('web.demo', 80);
  assert.equal(res.kind === 'cluster' && res.description, 'service demo/web port 80 → 8080 (3 ready)');
  assert.ok(res.kind === 'cluster' && res.candidates.every((c) => c.service === 'web' && typeof c.podUid === 'string'));
});

test('isClusterName and namespaces()', async () => {
  const r = await resolver();
  assert.equal(await r.isClusterName('web.demo.svc.cluster.local'), true);
  assert.equal(await r.isClusterName('web.demo'), true);
  assert.equal(await r.isClusterName('anything.other'), true);
  assert.equal(await r.isClusterName('web'), true);
  assert.equal(await r.isClusterName('nothing-here'), false);
  assert.equal(await r.isClusterName('github.com'), false);
  assert.equal(await r.isClusterName('10.96.100.10'), true);
  assert.equal(await r.isClusterName('10.244.0.11'), true);
  assert.equal(await r.isClusterName('1.1.1.1'), false);
  const ns = await r.namespaces();
  for (const n of ['default', 'demo', 'other']) assert.ok(ns.includes(n), n);
});

test('a namespace created a moment after the namespace list was read is found at once, in every name form', async () => {
  const r = await resolver();
  assert.equal(await r.isClusterName('web.demo'), true); // the namespace list is now fresh
  sim.cluster.addPod({ name: 'api-0', namespace: 'brand-new', labels: { app: 'api' }, ports: [{ name: 'http', containerPort: 8080 }] });
  sim.cluster.addService({ name: 'api', namespace: 'brand-new', selector: { app: 'api' }, ports: [{ port: 80, targetPort: 8080 }] });
  // Well within the 5 s after the list was read, which does not have brand-new.
  assert.deepEqual(pods(await r.resolve('api.brand-new.svc.cluster.local', 80)), ['brand-new/api-0:8080']);
  assert.deepEqual(pods(await r.resolve('api.brand-new', 80)), ['brand-new/api-0:8080']);
  await rejects(r.resolve('web.still-missing.svc', 80), 'NOT_FOUND', /namespace "still-missing" does not exist/);
});

test('choice spreads over ready pods and steps around reported failures', async () => {
  const r = await resolver();
  const firsts: string[] = [];
  for (let i = 0; i < 6; i++) {
    const res = await r.resolve('web.demo', 80);
    assert.equal(res.kind, 'cluster');
    if (res.kind === 'cluster') firsts.push(res.candidates[0]?.pod ?? '');
  }
  assert.deepEqual([...firsts.slice(0, 3)].sort(), ['web-0', 'web-1', 'web-2']);
  assert.deepEqual(firsts.slice(3), firsts.slice(0, 3), 'round robin');

  const res = await r.resolve('web.demo', 80);
  assert.ok(res.kind === 'cluster');
  const refused = res.candidates[0];
  assert.ok(refused);
  r.report(refused, 'refused');
  for (let i = 0; i < 4; i++) {
    const again = await r.resolve('web.demo', 80);
    assert.ok(again.kind === 'cluster');
    assert.notEqual(again.candidates[0]?.pod, refused.pod);
    assert.equal(again.candidates.at(-1)?.pod, refused.pod, 'still offered, last');
  }
  r.report(refused, 'ok');
});

test('watch-fed: readiness flips, deletions, new services', async () => {
  const r = await resolver({ negativeTtlMs: 50 });
  assert.deepEqual(pods(await r.resolve('web.demo', 80)), WEB);
  sim.cluster.setPodReady('demo', 'web-3', true);
  await eventually(async () => {
    assert.deepEqual(pods(await r.resolve('web.demo', 80)), [...WEB, 'demo/web-3:8080']);
  });
  sim.cluster.setPodReady('demo', 'web-3', false);
  sim.cluster.setPodTerminating('demo', 'web-2', true);
  await eventually(async () => {
    assert.deepEqual(pods(await r.resolve('web.demo', 80)), ['demo/web-0:8080', 'demo/web-1:8080']);
  });
  sim.cluster.setPodTerminating('demo', 'web-2', false);

  sim.cluster.addPod({ name: 'temp', namespace: 'demo', labels: { app: 'web' }, ports: [{ name: 'http', containerPort: 8081 }] });
  await eventually(async () => {
    assert.deepEqual(pods(await r.resolve('web.demo', 80)), [...WEB, 'demo/temp:8081'].sort());
  });
  sim.cluster.deletePod('demo', 'temp');
  await eventually(async () => {
    assert.deepEqual(pods(await r.resolve('web.demo', 80)), WEB);
  });
  await rejects(r.resolve('temp.demo.svc', 80), 'NOT_FOUND');
  // `x.NS` with no service or pod x in NS is a name outside the cluster.
  assert.deepEqual(await r.resolve('temp.demo', 80), { kind: 'external', host: 'temp.demo', port: 80 });

  // Negative answers are remembered briefly (negativeTtlMs), then forgotten.
  await rejects(r.resolve('fresh.demo.svc', 80), 'NOT_FOUND');
  sim.cluster.addService({ name: 'fresh', namespace: 'demo', selector: { app: 'lonely' }, ports: [{ port: 80, targetPort: 8080 }] });
  await rejects(r.resolve('fresh.demo.svc', 80), 'NOT_FOUND', /service "fresh" not found/);
  await eventually(async () => {
    assert.deepEqual(pods(await r.resolve('fresh.demo.svc', 80)), ['demo/lonely:8080']);
  });
  sim.cluster.deleteService('demo', 'fresh');
});

test('clear errors', async () => {
  const r = await resolver({ negativeTtlMs: 0 });
  await rejects(r.resolve('web.demo', 81), 'NO_SUCH_PORT', /service "web" in namespace "demo" has no port 81 \(its ports: 80\/TCP \(http\)\)/);
  await rejects(r.resolve('nope.demo.svc.cluster.local', 80), 'NOT_FOUND', /service "nope" not found in namespace "demo" \(see kubectl get svc -n demo\)/);
  assert.deepEqual(await r.resolve('nope.demo', 80), { kind: 'external', host: 'nope.demo', port: 80 });
  await rejects(r.resolve('web.nowhere.svc.cluster.local', 80), 'NOT_FOUND', /namespace "nowhere" does not exist/);
  await rejects(r.resolve('db-7.db.demo.svc.cluster.local', 5432), 'NOT_FOUND', /no endpoint with hostname "db-7"/);
  await rejects(r.resolve('10-244-9-9.demo.pod.cluster.local', 80), 'NOT_FOUND', /no pod with IP 10\.244\.9\.9/);
  await rejects(r.resolve('a.b.c.d.svc.cluster.local', 80), 'NOT_FOUND', /not a name Kubernetes DNS serves/);
  await rejects(r.resolve('web.demo', 0), 'BAD_TARGET');

  sim.cluster.addService({ name: 'idle', namespace: 'demo', selector: { app: 'web', tier: 'none' }, ports: [{ port: 80 }] });
  sim.cluster.addService({ name: 'sick', namespace: 'demo', selector: { app: 'sick' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] });
  sim.cluster.addPod({ name: 'sick-0', namespace: 'demo', labels: { app: 'sick' }, ready: false, ports: [{ name: 'http', containerPort: 8080 }] });
  sim.cluster.addPod({ name: 'sick-1', namespace: 'demo', labels: { app: 'sick' }, terminating: true, ports: [{ name: 'http', containerPort: 8080 }] });
  sim.cluster.addPod({ name: 'pending', namespace: 'demo', phase: 'Pending', ports: [{ containerPort: 8080 }] });
  sim.cluster.addService({ name: 'dns', namespace: 'demo', selector: { app: 'web' }, ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] });
  try {
    await eventually(async () => {
      await rejects(r.resolve('sick.demo', 80), 'NO_READY_ENDPOINTS', /service "sick" in namespace "demo" has no ready endpoints for port 80: 1 not ready, 1 terminating/);
    });
    await eventually(async () => {
      await rejects(r.resolve('idle.demo', 80), 'NO_READY_ENDPOINTS', /no endpoints: its selector matches no pod/);
    });
    await eventually(async () => {
      await rejects(r.resolve('pending.demo', 8080), 'POD_NOT_RUNNING', /pod "pending" in namespace "demo" is Pending, not Running/);
    });
    await eventually(async () => {
      await rejects(r.resolve('dns.demo', 53), 'NO_SUCH_PORT', /port 53 only as UDP/);
    });
  } finally {
    for (const s of ['idle', 'sick', 'dns']) sim.cluster.deleteService('demo', s);
    for (const p of ['sick-0', 'sick-1', 'pending']) sim.cluster.deletePod('demo', p);
  }

  r.close();
  await rejects(r.resolve('web.demo', 80), 'CLOSED');

  // The caller went away: the lookup is abandoned.
  const r2 = await resolver();
  const ac = new AbortController();
  ac.abort();
  await rejects(r2.resolve('web.demo', 80, ac.signal), 'CLOSED', /abandoned/);
  const timedOut = r2.resolve('api.other', 80, AbortSignal.timeout(1));
  await rejects(timedOut, 'TIMEOUT');
});

test('ExternalName pointing at a cluster name is followed once', async () => {
  const r = await resolver();
  sim.cluster.addService({ name: 'alias', namespace: 'demo', type: 'ExternalName', externalName: 'api.other.svc.cluster.local' });
  sim.cluster.addService({ name: 'alias2', namespace: 'demo', type: 'ExternalName', externalName: 'alias.demo.svc.cluster.local' });
  try {
    await eventually(async () => {
      assert.deepEqual(pods(await r.resolve('alias.demo', 80)), ['other/api-0:8080']);
    });
    await eventually(async () => {
      await rejects(r.resolve('alias2.demo', 80), 'NOT_FORWARDABLE', /another ExternalName hop/);
    });
  } finally {
    sim.cluster.deleteService('demo', 'alias');
    sim.cluster.deleteService('demo', 'alias2');
  }
});

test('a user who may neither list endpointslices nor get endpoints is told which right is missing', async () => {
  sim.cluster.addUser({
    name: 'noendpoints',
    token: 'noendpoints-token',
    rules: [
      { verbs: ['get'], resources: ['pods', 'services', 'namespaces', 'endpointslices'] },
      { verbs: ['create'], resources: ['pods/portforward'] },
    ],
  });
  const r = await resolver({ getFallbackTtlMs: 50 }, 'noendpoints');
  await rejects(r.resolve('web.demo', 80), 'FORBIDDEN', /User "noendpoints" cannot list resource "endpointslices".*to find the pods of service "web"/);
});

test('a user without list/watch falls back to GETs', async () => {
  const r = await resolver({ getFallbackTtlMs: 50 }, 'nowatch');
  // Pods by name, services by name (ports, ExternalName), namespace existence by GET.
  assert.deepEqual(pods(await r.resolve('lonely.demo', 8080)), ['demo/lonely:8080']);
  assert.deepEqual(pods(await r.resolve('web-1.demo', 8080)), ['demo/web-1:8080']);
  assert.deepEqual(await r.resolve('docs.demo', 443), { kind: 'external', host: 'example.com', port: 443 });
  assert.deepEqual(await r.resolve('example.com', 443), { kind: 'external', host: 'example.com', port: 443 });
  await rejects(r.resolve('web.demo', 81), 'NO_SUCH_PORT');
  await rejects(r.resolve('nope.demo.svc', 80), 'NOT_FOUND');
  // Without list on endpointslices, the service's v1 Endpoints object (a get) names its pods.
  assert.deepEqual(pods(await r.resolve('web.demo', 80)), WEB);
  assert.deepEqual(pods(await r.resolve('db-1.db.demo.svc', 5432)), ['demo/db-1:5432']);
  // Pod IPs cannot be searched without list: say so, and what to use instead.
  await rejects(r.resolve('10-244-0-10.demo.pod.cluster.local', 8080), 'NOT_FOUND', /listing pods there is forbidden; use the pod's name/);
  await rejects(r.resolve('10.244.0.10', 8080), 'NOT_FOUND', /use a name such as SERVICE\.NAMESPACE/);
  assert.deepEqual(await r.resolve('1.1.1.1', 443), { kind: 'external', host: '1.1.1.1', port: 443 });

  // The GET answers are fresh after getFallbackTtlMs.
  sim.cluster.setPodPhase('demo', 'lonely', 'Failed');
  try {
    await eventually(async () => {
      await rejects(r.resolve('lonely.demo', 8080), 'POD_NOT_RUNNING', /is Failed/);
    });
  } finally {
    sim.cluster.setPodPhase('demo', 'lonely', 'Running');
  }
  assert.deepEqual(await r.namespaces(), ['demo']);
});

test('a restricted (scoped) user: only its namespace, cluster-scoped lists forbidden', async () => {
  const r = await resolver({}, 'scoped');
  assert.deepEqual(pods(await r.resolve('web.demo', 80)), WEB);
  assert.deepEqual(pods(await r.resolve('10.96.100.10', 80)), WEB, 'IPs of watched namespaces need no cluster-wide list');
  await rejects(r.resolve('api.other', 80), 'FORBIDDEN', /User "scoped" cannot get resource "services" in API group "" in the namespace "other"/);
});

test('a revoked token: one refresh, then UNAUTHORIZED naming the context', async () => {
  sim.cluster.addUser({ name: 'temp', token: 'temp-token-0123456789' });
  const r = await resolver({}, 'temp');
  assert.deepEqual(pods(await r.resolve('web.demo', 80)), WEB);
  sim.cluster.revokeToken('temp-token-0123456789');
  const err = await rejects(r.resolve('api.other', 80), 'UNAUTHORIZED', /credentials of context "kubesocks-sim".*log in again/);
  assert.ok(!err.message.includes('temp-token'), 'no token in the message');
  // What the watches already hold keeps answering.
  assert.deepEqual(pods(await r.resolve('web.demo', 80)), WEB);
});
