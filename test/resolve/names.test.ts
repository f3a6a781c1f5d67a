import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { canonicalIP, dashedIP, isClusterForm, normalizeHost, parseName } from '../../src/resolve/names.js';

const ns = { namespace: 'demo' };

test('service forms', () => {
  const web = [{ kind: 'service', namespace: 'demo', service: 'web' }];
  assert.deepEqual(parseName('web.demo.svc.cluster.local', ns), web);
  assert.deepEqual(parseName('web.demo.svc', ns), web);
  assert.deepEqual(parseName('web.demo', ns), [
    { kind: 'service', namespace: 'demo', service: 'web' },
    { kind: 'pod', namespace: 'demo', pod: 'web' },
    { kind: 'external', host: 'web.demo' },
  ]);
  assert.deepEqual(parseName('web', { namespace: 'other' }), [
    { kind: 'service', namespace: 'other', service: 'web' },
    { kind: 'pod', namespace: 'other', pod: 'web' },
  ]);
});

test('trailing dot and upper case', () => {
  const web = [{ kind: 'service', namespace: 'demo', service: 'web' }];
  assert.deepEqual(parseName('web.demo.svc.cluster.local.', ns), web);
  assert.deepEqual(parseName('WEB.Demo.SVC.Cluster.Local', ns), web);
  assert.deepEqual(parseName('Web.Demo.Svc.', ns), web);
  assert.deepEqual(parseName('GitHub.com.', ns).at(-1), { kind: 'external', host: 'github.com' });
});

test('service host (headless / StatefulSet endpoints)', () => {
  assert.deepEqual(parseName('db-0.db.demo.svc.cluster.local', ns), [
    { kind: 'serviceHost', namespace: 'demo', service: 'db', hostname: 'db-0' },
  ]);
  assert.deepEqual(parseName('db-0.db.demo.svc', ns), [
    { kind: 'serviceHost', namespace: 'demo', service: 'db', hostname: 'db-0' },
  ]);
});

test('pod IP names', () => {
  assert.deepEqual(parseName('10-244-0-10.demo.pod.cluster.local', ns), [
    { kind: 'podIP', namespace: 'demo', ip: '10.244.0.10' },
  ]);
  assert.deepEqual(parseName('10-244-0-10.demo.pod', ns), [{ kind: 'podIP', namespace: 'demo', ip: '10.244.0.10' }]);
  assert.deepEqual(parseName('fd00-10-244--a.demo.pod.cluster.local', ns), [
    { kind: 'podIP', namespace: 'demo', ip: 'fd00:10:244::a' },
  ]);
  // Not an IP in the pod form: no reading at all (NOT_FOUND, not the internet).
  assert.deepEqual(parseName('10-244-0.demo.pod.cluster.local', ns), []);
});

test('IP literals', () => {
  assert.deepEqual(parseName('10.96.0.10', ns), [{ kind: 'ip', ip: '10.96.0.10' }]);
  assert.deepEqual(parseName('[FD00:0::0001]', ns), [{ kind: 'ip', ip: 'fd00::1' }]);
  assert.deepEqual(parseName('fd00::1', ns), [{ kind: 'ip', ip: 'fd00::1' }]);
  assert.deepEqual(parseName('::ffff:10.244.0.10', ns), [{ kind: 'ip', ip: '10.244.0.10' }]);
  assert.equal(canonicalIP('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
  assert.equal(canonicalIP('web'), null);
  assert.equal(dashedIP('1-2-3-4'), '1.2.3.4');
  assert.equal(dashedIP('web-0'), null);
});

test('cluster domain override', () => {
  const opts = { namespace: 'demo', clusterDomain: 'k8s.internal.' };
  assert.deepEqual(parseName('web.demo.svc.k8s.internal', opts), [
    { kind: 'service', namespace: 'demo', service: 'web' },
  ]);
  // With another domain, cluster.local is just an outside name.
  assert.deepEqual(parseName('web.demo.svc.cluster.local', opts), [
    { kind: 'external', host: 'web.demo.svc.cluster.local' },
  ]);
});

test('names inside the cluster domain that no DNS form matches', () => {
  assert.deepEqual(parseName('cluster.local', ns), []);
  assert.deepEqual(parseName('demo.cluster.local', ns), []);
  assert.deepEqual(parseName('a.b.c.d.svc.cluster.local', ns), []);
  assert.deepEqual(parseName('web.demo.cluster.local', ns), []);
  // Service names start with a letter (DNS-1035).
  assert.deepEqual(parseName('1web.demo.svc.cluster.local', ns), []);
});

test('external names', () => {
  assert.deepEqual(parseName('github.com', ns), [
    { kind: 'service', namespace: 'com', service: 'github' },
    { kind: 'pod', namespace: 'com', pod: 'github' },
    { kind: 'external', host: 'github.com' },
  ]);
  // Three labels: the headless-endpoint form host.svc.ns, or the internet name.
  assert.deepEqual(parseName('api.github.com', ns), [
    { kind: 'serviceHost', namespace: 'com', service: 'github', hostname: 'api' },
    { kind: 'external', host: 'api.github.com' },
  ]);
  assert.deepEqual(parseName('db-0.db.demo', ns), [
    { kind: 'serviceHost', namespace: 'demo', service: 'db', hostname: 'db-0' },
    { kind: 'external', host: 'db-0.db.demo' },
  ]);
  assert.deepEqual(parseName('www.2048.io', ns), [{ kind: 'external', host: 'www.2048.io' }]);
  assert.deepEqual(parseName('a.b.c.example', ns), [{ kind: 'external', host: 'a.b.c.example' }]);
  assert.deepEqual(parseName('localhost', ns), [{ kind: 'external', host: 'localhost' }]);
  assert.deepEqual(parseName('my_host.example', ns), [{ kind: 'external', host: 'my_host.example' }]);
  // A service name cannot start with a digit; a pod name can.
  assert.deepEqual(parseName('2048.io', ns), [
    { kind: 'pod', namespace: 'io', pod: '2048' },
    { kind: 'external', host: '2048.io' },
  ]);
  assert.deepEqual(parseName('', ns), []);
});

test('isClusterForm', () => {
  assert.equal(isClusterForm(parseName('web.demo.svc.cluster.local', ns)), true);
  assert.equal(isClusterForm(parseName('web.demo.svc', ns)), true);
  assert.equal(isClusterForm(parseName('db-0.db.demo.svc', ns)), true);
  assert.equal(isClusterForm(parseName('1-2-3-4.demo.pod.cluster.local', ns)), true);
  assert.equal(isClusterForm(parseName('web.demo', ns)), null);
  assert.equal(isClusterForm(parseName('web', ns)), null);
  assert.equal(isClusterForm(parseName('10.0.0.1', ns)), null);
  assert.equal(isClusterForm(parseName('api.github.com', ns)), null);
  assert.equal(isClusterForm(parseName('a.b.c.example', ns)), false);
  assert.equal(normalizeHost(' Web.Demo. '), 'web.demo');
});
