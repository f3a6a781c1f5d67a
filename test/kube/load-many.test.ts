/** KubeClient.loadMany: several contexts of one kubeconfig, read once, none contacted. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { KubeClient } from '../../src/kube/client.js';

function kubeconfig(t: { after(fn: () => void): void }, marker: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kubesocks-many-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config');
  const exec = { apiVersion: 'client.authentication.k8s.io/v1beta1', command: 'sh', args: ['-c', `touch '${marker}'; echo '{}'`] };
  fs.writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'two',
      clusters: [
        { name: 'c1', cluster: { server: 'https://one.example:6443' } },
        { name: 'c2', cluster: { server: 'https://two.example' } },
      ],
      users: [
        { name: 'u', user: { token: 't' } },
        { name: 'x', user: { exec } },
      ],
      contexts: [
        { name: 'one', context: { cluster: 'c1', user: 'x', namespace: 'ns1' } },
        { name: 'two', context: { cluster: 'c2', user: 'u' } },
        { name: 'broken', context: { cluster: 'nope', user: 'u' } },
        { name: 'three', context: { cluster: 'c1', user: 'u', namespace: 'ns3' } },
      ],
    }),
  );
  return file;
}

test('loadMany: the named contexts in order, each its own client; -n applies to all', async (t) => {
  const marker = path.join(os.tmpdir(), `kubesocks-exec-${process.pid}-1`);
  const file = kubeconfig(t, marker);
  const { contexts } = await KubeClient.loadMany({ kubeconfig: file, contexts: ['three', 'one'] });
  assert.deepEqual(
    contexts.map((c) => [c.name, c.client?.clusterServer, c.client?.namespace]),
    [
      ['three', 'https://one.example:6443', 'ns3'],
      ['one', 'https://one.example:6443', 'ns1'],
    ],
  );
  const withNs = await KubeClient.loadMany({ kubeconfig: file, contexts: ['three', 'one'], namespace: 'flag' });
  assert.deepEqual(withNs.contexts.map((c) => c.client?.namespace), ['flag', 'flag']);
  assert.equal(fs.existsSync(marker), false, 'loading runs no exec plugin');
});

test('loadMany: no names means the current context; allContexts puts the default first and keeps broken ones with their reason', async (t) => {
  const marker = path.join(os.tmpdir(), `kubesocks-exec-${process.pid}-2`);
  const file = kubeconfig(t, marker);
  const current = await KubeClient.loadMany({ kubeconfig: file });
  assert.deepEqual(current.contexts.map((c) => c.name), ['two']);
  const all = await KubeClient.loadMany({ kubeconfig: file, allContexts: true });
  assert.deepEqual(all.contexts.map((c) => c.name), ['two', 'one', 'broken', 'three']);
  const broken = all.contexts[2];
  assert.equal(broken?.client, null);
  assert.match(broken?.error?.message ?? '', /context "broken" refers to cluster "nope"/);
  const led = await KubeClient.loadMany({ kubeconfig: file, allContexts: true, contexts: ['three'] });
  assert.deepEqual(led.contexts.map((c) => c.name), ['three', 'one', 'two', 'broken'], 'the named first, then kubeconfig order');
  assert.equal(fs.existsSync(marker), false);
});

test('loadMany: a context named explicitly must exist and be usable', async (t) => {
  const file = kubeconfig(t, '/dev/null');
  await assert.rejects(KubeClient.loadMany({ kubeconfig: file, contexts: ['one', 'nope'] }), { code: 'CONFIG', message: /context "nope" not found/ });
  await assert.rejects(KubeClient.loadMany({ kubeconfig: file, contexts: ['broken'] }), { code: 'CONFIG', message: /cluster "nope"/ });
  await assert.rejects(KubeClient.loadMany({ kubeconfig: file, allContexts: true, contexts: ['broken'] }), { code: 'CONFIG' });
});
