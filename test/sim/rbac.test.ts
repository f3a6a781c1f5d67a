/**
 * RBAC: the scenario's users, their denials with the real messages, and run-time users and revocation.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SimCluster } from '../../src/sim/cluster.js';
import { call, Watch, PF, spdyUpgrade, STATUS_401 } from '../helpers/sim-api.js';

describe('RBAC', () => {
  let c: SimCluster;
  before(async () => {
    c = await SimCluster.start();
  });
  after(() => c.close());

  test('viewer reads everything', async () => {
    const token = c.tokenFor('viewer');
    for (const path of [
      '/api/v1/pods',
      '/api/v1/namespaces/demo/services/web',
      '/apis/discovery.k8s.io/v1/namespaces/demo/endpointslices',
      '/api/v1/namespaces/demo/endpoints',
      '/apis/apps/v1/deployments',
      '/apis/apps/v1/namespaces/demo/statefulsets/db',
      '/api/v1/namespaces',
    ]) {
      assert.equal((await call(c, path, { token })).status, 200, path);
    }
    const w = new Watch(c, '/api/v1/namespaces/demo/pods?watch=1', token);
    assert.equal(await w.opened(), 200);
    w.close();
  });

  test('nowatch may get but not list or watch, with the real messages', async () => {
    const token = c.tokenFor('nowatch');
    assert.equal((await call(c, '/api/v1/namespaces/demo/pods/web-0', { token })).status, 200);
    const list = await call(c, '/api/v1/namespaces/demo/pods', { token });
    assert.equal(list.status, 403);
    assert.deepEqual(list.json, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'pods is forbidden: User "nowatch" cannot list resource "pods" in API group "" in the namespace "demo"',
      reason: 'Forbidden',
      details: { kind: 'pods' },
      code: 403,
    });
    const watch = await call(c, '/api/v1/namespaces/demo/pods?watch=1', { token });
    assert.equal(watch.json.message, 'pods is forbidden: User "nowatch" cannot watch resource "pods" in API group "" in the namespace "demo"');
    const all = await call(c, '/api/v1/pods', { token });
    assert.equal(all.json.message, 'pods is forbidden: User "nowatch" cannot list resource "pods" in API group "" at the cluster scope');
    const slices = await call(c, '/apis/discovery.k8s.io/v1/namespaces/demo/endpointslices', { token });
    assert.equal(
      slices.json.message,
      'endpointslices.discovery.k8s.io is forbidden: User "nowatch" cannot list resource "endpointslices" in API group "discovery.k8s.io" in the namespace "demo"',
    );
    const named = await call(c, `/api/v1/namespaces/demo/pods?fieldSelector=${encodeURIComponent('metadata.name=web-0')}`, { token });
    assert.equal(named.json.message, 'pods "web-0" is forbidden: User "nowatch" cannot list resource "pods" in API group "" in the namespace "demo"');
  });

  test('scoped may do anything in demo only', async () => {
    const token = c.tokenFor('scoped');
    assert.equal((await call(c, '/api/v1/namespaces/demo/pods', { token })).status, 200);
    assert.equal((await call(c, '/api/v1/namespaces/demo', { token })).status, 200, 'a namespace\'s own name is its namespace');
    const other = await call(c, '/api/v1/namespaces/other/services/api', { token });
    assert.equal(other.json.message, 'services "api" is forbidden: User "scoped" cannot get resource "services" in API group "" in the namespace "other"');
    const nsList = await call(c, '/api/v1/namespaces', { token });
    assert.equal(nsList.json.message, 'namespaces is forbidden: User "scoped" cannot list resource "namespaces" in API group "" at the cluster scope');
  });

  test('users added at run time; revoked tokens get 401 everywhere', async () => {
    c.addUser({ name: 'temp', token: 'temp-token-1', rules: [{ verbs: ['get'], resources: ['pods'], namespaces: ['other'] }] });
    assert.equal(c.tokenFor('temp'), 'temp-token-1');
    assert.equal((await call(c, '/api/v1/namespaces/other/pods/api-0', { token: 'temp-token-1' })).status, 200);
    c.revokeToken('temp-token-1');
    const r = await call(c, '/api/v1/namespaces/other/pods/api-0', { token: 'temp-token-1' });
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, STATUS_401);
    const upgrade = await spdyUpgrade(c, PF('other', 'api-0'), { token: 'temp-token-1' });
    assert.equal(upgrade.status, 401);
    assert.deepEqual(JSON.parse(upgrade.body), STATUS_401);
    assert.throws(() => c.tokenFor('nobody'), /no user named "nobody"/);
  });
});
