/**
 * apps/v1 workloads (deployments, statefulsets, replica sets): their shape, status, run-time changes,
 * Tables and scenario validation.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SimCluster } from '../../src/sim/cluster.js';
import { validateScenario, ScenarioError } from '../../src/sim/scenario.js';
import { type Json, call, Watch, names } from '../helpers/sim-api.js';

describe('apps/v1 workloads', () => {
  let c: SimCluster;
  before(async () => {
    c = await SimCluster.start();
  });
  after(() => c.close());

  const TABLE = { Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' };

  test('the demo deployment web and statefulset db, shaped like real ones', async () => {
    const web = (await call(c, '/apis/apps/v1/namespaces/demo/deployments/web')).json;
    assert.equal(web.kind, 'Deployment');
    assert.equal(web.apiVersion, 'apps/v1');
    assert.equal(web.metadata.generation, 1);
    assert.match(web.metadata.uid, /^[0-9a-f-]{36}$/);
    assert.match(web.metadata.resourceVersion, /^\d+$/);
    assert.deepEqual(web.spec.selector, { matchLabels: { app: 'web' } });
    assert.equal(web.spec.replicas, 4);
    assert.deepEqual(web.spec.template.metadata.labels, { app: 'web' }, 'the template matches the selector');
    assert.equal(web.spec.strategy.type, 'RollingUpdate');
    // web-0..2 ready, web-3 not.
    assert.deepEqual(
      { ...web.status, conditions: undefined },
      { observedGeneration: 1, replicas: 4, updatedReplicas: 4, readyReplicas: 3, availableReplicas: 3, unavailableReplicas: 1, conditions: undefined },
    );
    assert.deepEqual(
      web.status.conditions.map((x: Json) => [x.type, x.status, x.reason]),
      [['Available', 'True', 'MinimumReplicasAvailable']],
    );

    const db = (await call(c, '/apis/apps/v1/namespaces/demo/statefulsets/db')).json;
    assert.equal(db.kind, 'StatefulSet');
    assert.equal(db.spec.serviceName, 'db');
    assert.deepEqual(db.spec.selector, { matchLabels: { app: 'db' } });
    assert.match(db.status.currentRevision, /^db-[bcdfghjklmnpqrstvwxz2456789]{10}$/);
    assert.deepEqual(db.status, {
      observedGeneration: 1,
      replicas: 2,
      readyReplicas: 2,
      currentReplicas: 2,
      currentRevision: db.status.currentRevision,
      updatedReplicas: 2,
      updateRevision: db.status.currentRevision,
      collisionCount: 0,
      availableReplicas: 2,
    });
    // The pods the statefulset selects keep their names and hostnames.
    const pods = (await call(c, `/api/v1/namespaces/demo/pods?labelSelector=${encodeURIComponent('app=db')}`)).json;
    assert.deepEqual(pods.items.map((p: Json) => [p.metadata.name, p.spec.hostname, p.spec.subdomain]), [
      ['db-0', 'db-0', 'db'],
      ['db-1', 'db-1', 'db'],
    ]);
  });

  test('lists, 404s and RBAC name the apps group', async () => {
    const list = (await call(c, '/apis/apps/v1/deployments')).json;
    assert.equal(list.kind, 'DeploymentList');
    assert.equal(list.apiVersion, 'apps/v1');
    assert.deepEqual(names(list), ['web']);
    assert.equal(list.items[0].kind, undefined);
    assert.equal((await call(c, '/apis/apps/v1/namespaces/demo/statefulsets')).json.kind, 'StatefulSetList');
    assert.deepEqual((await call(c, '/apis/apps/v1/namespaces/demo/replicasets')).json.items, []);

    const missing = await call(c, '/apis/apps/v1/namespaces/demo/deployments/nope');
    assert.equal(missing.status, 404);
    assert.equal(missing.json.message, 'deployments.apps "nope" not found');
    assert.deepEqual(missing.json.details, { name: 'nope', group: 'apps', kind: 'deployments' });

    c.addUser({ name: 'pods-only', token: 'pods-only-token', rules: [{ verbs: ['get', 'list'], resources: ['pods'] }] });
    const denied = await call(c, '/apis/apps/v1/namespaces/demo/deployments/web', { token: 'pods-only-token' });
    assert.equal(denied.status, 403);
    assert.equal(denied.json.message, 'deployments.apps "web" is forbidden: User "pods-only" cannot get resource "deployments" in API group "apps" in the namespace "demo"');
    assert.deepEqual(denied.json.details, { name: 'web', group: 'apps', kind: 'deployments' });
    const viewer = c.tokenFor('viewer');
    assert.equal((await call(c, '/apis/apps/v1/namespaces/demo/statefulsets', { token: viewer })).status, 200);
  });

  test('status follows the selected pods, on watches too', async () => {
    const list = (await call(c, '/apis/apps/v1/namespaces/demo/deployments')).json;
    const w = new Watch(c, `/apis/apps/v1/namespaces/demo/deployments?watch=1&resourceVersion=${list.metadata.resourceVersion}`);
    assert.equal(await w.opened(), 200);
    c.setPodReady('demo', 'web-3', true);
    const allReady = await w.find((e) => e.object.status.readyReplicas === 4);
    assert.equal(allReady.type, 'MODIFIED');
    assert.equal(allReady.object.status.unavailableReplicas, undefined, 'a zero count is left out');
    const at = allReady.object.status.conditions[0].lastTransitionTime;

    // Pods that stop or start matching count too; readiness of others does not change the object.
    c.setPodReady('demo', 'echo-0', false);
    c.replacePod({ ...web(4), labels: { app: 'web' } });
    const five = await w.find((e) => e.object.status.replicas === 5);
    assert.equal(five.object.status.conditions[0].lastTransitionTime, at, 'Available stayed True: its transition time is kept');
    c.deletePod('demo', 'web-4');
    await w.find((e) => e.object.status.replicas === 4 && e.object.metadata.resourceVersion !== five.object.metadata.resourceVersion);

    // Below 75 % available the deployment loses its Available condition.
    for (const i of [0, 1, 2]) c.setPodReady('demo', `web-${i}`, false);
    const unavailable = await w.find((e) => e.object.status.conditions[0].status === 'False');
    assert.deepEqual(
      [unavailable.object.status.readyReplicas, unavailable.object.status.unavailableReplicas, unavailable.object.status.conditions[0].reason],
      [2, 2, 'MinimumReplicasUnavailable'],
      '3 of 4 (25 % maxUnavailable, rounded down) must be available',
    );
    for (const i of [0, 1, 2]) c.setPodReady('demo', `web-${i}`, true);
    c.setPodReady('demo', 'web-3', false);
    c.setPodReady('demo', 'echo-0', true);
    const types = new Set(w.events.map((e) => e.type));
    assert.deepEqual([...types], ['MODIFIED']);
    w.close();
  });

  function web(i: number) {
    return { name: `web-${i}`, namespace: 'demo', ip: `10.244.0.${10 + i}`, ports: [{ name: 'http', containerPort: 8080 }] };
  }

  test('workloads added, replaced and deleted at run time; matchExpressions; replica sets', async () => {
    const w = new Watch(c, '/apis/apps/v1/namespaces/demo/replicasets?watch=1');
    await w.opened();
    c.addWorkload('replicasets', {
      name: 'web-7d4b9c8f5',
      namespace: 'demo',
      selector: { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'app', operator: 'In', values: ['web', 'www'] }, { key: 'canary', operator: 'DoesNotExist' }] },
      replicas: 4,
    });
    const added = await w.find((e) => e.type === 'ADDED');
    assert.equal(added.object.kind, 'ReplicaSet');
    assert.deepEqual(added.object.status, { replicas: 4, fullyLabeledReplicas: 4, readyReplicas: 3, availableReplicas: 3, observedGeneration: 1 });
    assert.deepEqual(added.object.spec.selector.matchExpressions[1], { key: 'canary', operator: 'DoesNotExist' });

    c.addPod({ name: 'web-canary', namespace: 'demo', labels: { app: 'web', canary: 'yes' }, ip: '10.244.0.99', ports: [{ name: 'http', containerPort: 8080 }] });
    const deployment = (await call(c, '/apis/apps/v1/namespaces/demo/deployments/web')).json;
    assert.equal(deployment.status.replicas, 5, 'the deployment selects the canary');
    const rs = (await call(c, '/apis/apps/v1/namespaces/demo/replicasets/web-7d4b9c8f5')).json;
    assert.equal(rs.status.replicas, 4, 'the replica set does not');
    c.deletePod('demo', 'web-canary');

    const byField = (await call(c, `/apis/apps/v1/namespaces/demo/replicasets?fieldSelector=${encodeURIComponent('status.replicas=4')}`)).json;
    assert.deepEqual(names(byField), ['web-7d4b9c8f5']);

    c.addWorkload('replicasets', { name: 'web-7d4b9c8f5', namespace: 'demo', selector: { matchLabels: { app: 'web' } }, replicas: 2 });
    const replaced = await w.find((e) => e.type === 'MODIFIED' && e.object.spec.replicas === 2);
    assert.equal(replaced.object.metadata.generation, 2);
    assert.equal(replaced.object.metadata.uid, added.object.metadata.uid);

    c.deleteWorkload('replicasets', 'demo', 'web-7d4b9c8f5');
    assert.equal((await w.find((e) => e.type === 'DELETED')).object.metadata.name, 'web-7d4b9c8f5');
    assert.equal((await call(c, '/api/v1/namespaces/demo/pods/web-0')).status, 200, 'its pods stay');
    assert.throws(() => c.deleteWorkload('replicasets', 'demo', 'web-7d4b9c8f5'), { message: 'replicasets.apps "web-7d4b9c8f5" not found' });
    w.close();
  });

  test('kubectl-style Tables', async () => {
    const deploy = (await call(c, '/apis/apps/v1/namespaces/demo/deployments', { headers: TABLE })).json;
    assert.deepEqual(deploy.columnDefinitions.map((x: Json) => [x.name, x.priority]), [
      ['Name', 0],
      ['Ready', 0],
      ['Up-to-date', 0],
      ['Available', 0],
      ['Age', 0],
      ['Containers', 1],
      ['Images', 1],
      ['Selector', 1],
    ]);
    const cells = deploy.rows[0].cells;
    assert.deepEqual([...cells.slice(0, 4), ...cells.slice(5)], ['web', '3/4', 4, 3, 'main', 'registry.k8s.io/kubesocks/sim-backend:1.0', 'app=web']);
    const sts = (await call(c, '/apis/apps/v1/namespaces/demo/statefulsets/db', { headers: TABLE })).json;
    assert.deepEqual(sts.columnDefinitions.map((x: Json) => x.name), ['Name', 'Ready', 'Age', 'Containers', 'Images']);
    assert.deepEqual(sts.rows[0].cells.slice(0, 2), ['db', '2/2']);
  });

  test('scenario validation of workloads names the field', () => {
    const base = { pods: [], services: [] };
    const cases: Array<[unknown, string]> = [
      [{ ...base, deployments: [{ name: 'a', namespace: 'n', selector: {} }] }, 'scenario deployments[0].selector: empty selector is invalid for an apps/v1 workload'],
      [{ ...base, deployments: [{ name: 'a', namespace: 'n' }] }, 'scenario deployments[0].selector: expected an object, got nothing'],
      [
        { ...base, statefulsets: [{ name: 'a', namespace: 'n', selector: { matchExpressions: [{ key: 'app', operator: 'In' }] } }] },
        "scenario statefulsets[0].selector.matchExpressions[0].values: must be specified when `operator` is 'In' or 'NotIn'",
      ],
      [
        { ...base, replicasets: [{ name: 'a', namespace: 'n', selector: { matchExpressions: [{ key: 'app', operator: 'Exists', values: ['x'] }] } }] },
        "scenario replicasets[0].selector.matchExpressions[0].values: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
      ],
      [
        { ...base, deployments: [{ name: 'a', namespace: 'n', selector: { matchExpressions: [{ key: 'app', operator: 'Maybe', values: ['x'] }] } }] },
        'scenario deployments[0].selector.matchExpressions[0].operator: expected one of In, NotIn, Exists, DoesNotExist, got "Maybe"',
      ],
      [
        { ...base, deployments: [{ name: 'a', namespace: 'n', selector: { matchLabels: { a: 'b' } }, serviceName: 'a' }] },
        'scenario deployments[0]: unknown field "serviceName" (known: name, namespace, selector, replicas)',
      ],
      [{ ...base, deployments: [{ name: 'a', namespace: 'n', selector: { matchLabels: { a: 'b' } }, replicas: -1 }] }, 'scenario deployments[0].replicas: expected an integer 0-2147483647, got -1'],
      [
        { ...base, deployments: [{ name: 'a', namespace: 'n', selector: { matchLabels: { a: 'b' } } }, { name: 'a', namespace: 'n', selector: { matchLabels: { a: 'c' } } }] },
        'scenario deployments[1]: duplicate deployment n/a',
      ],
    ];
    for (const [input, message] of cases) {
      assert.throws(() => validateScenario(input), (err: unknown) => err instanceof ScenarioError && err.message === message, message);
    }
    // The same name as a deployment and a statefulset is fine: different resources.
    const ok = validateScenario({ ...base, deployments: [{ name: 'a', namespace: 'n', selector: { matchLabels: { a: 'b' } } }], statefulsets: [{ name: 'a', namespace: 'n', selector: { matchLabels: { a: 'b' } } }] });
    assert.equal(ok.statefulsets?.length, 1);
  });
});
