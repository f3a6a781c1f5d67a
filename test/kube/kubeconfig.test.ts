import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KubeClient } from '../../src/kube/client.js';
import { loadKubeConfig } from '../../src/kube/kubeconfig.js';
import { KubesocksError } from '../../src/errors.js';

function tmpdir(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kubesocks-kube-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface KC {
  current?: string;
  clusters?: Array<[string, Record<string, unknown>]>;
  users?: Array<[string, Record<string, unknown>]>;
  contexts?: Array<[string, Record<string, unknown>]>;
}

function writeKubeconfig(file: string, kc: KC): string {
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': kc.current,
    clusters: (kc.clusters ?? []).map(([name, cluster]) => ({ name, cluster })),
    users: (kc.users ?? []).map(([name, user]) => ({ name, user })),
    contexts: (kc.contexts ?? []).map(([name, context]) => ({ name, context })),
  };
  fs.writeFileSync(file, JSON.stringify(doc));
  return file;
}

async function rejectsCode(p: Promise<unknown>, code: string, re?: RegExp): Promise<KubesocksError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof KubesocksError, `expected KubesocksError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (re) assert.match(err.message, re);
    assert.ok(!err.message.includes('\n'), 'one line');
    return err;
  }
  assert.fail('expected a rejection');
}

test('KUBECONFIG files merge like kubectl: first current-context and first name win; missing entries are skipped', async (t) => {
  const dir = tmpdir(t);
  const a = writeKubeconfig(path.join(dir, 'a'), {
    current: 'alpha',
    clusters: [['c1', { server: 'https://alpha.example:6443' }]],
    users: [['u1', { token: 'tok-a' }]],
    contexts: [['alpha', { cluster: 'c1', user: 'u1', namespace: 'team' }]],
  });
  const b = writeKubeconfig(path.join(dir, 'b'), {
    current: 'beta',
    clusters: [
      ['c1', { server: 'https://ignored.example' }],
      ['c2', { server: 'https://beta.example' }],
    ],
    users: [['u2', { token: 'tok-b' }]],
    contexts: [
      ['beta', { cluster: 'c2', user: 'u2' }],
      ['alpha', { cluster: 'c2', user: 'u2' }],
    ],
  });
  const env = { KUBECONFIG: [a, path.join(dir, 'missing'), b].join(path.delimiter) };

  const first = await KubeClient.load({}, { env });
  assert.equal(first.contextName, 'alpha');
  assert.equal(first.clusterServer, 'https://alpha.example:6443');
  assert.equal(first.namespace, 'team');
  assert.equal(first.userName, 'u1');
  assert.equal(first.describe(), 'context alpha, cluster https://alpha.example:6443');
  const o = await first.requestOptions('GET', '/api');
  assert.equal((o.headers as Record<string, string>).Authorization, 'Bearer tok-a');

  const second = await KubeClient.load({ context: 'beta', namespace: 'ns-flag' }, { env });
  assert.equal(second.contextName, 'beta');
  assert.equal(second.clusterServer, 'https://beta.example');
  assert.equal(second.namespace, 'ns-flag');
  const o2 = await second.requestOptions('GET', '/api');
  assert.equal(o2.hostname, 'beta.example');
  assert.equal(o2.port, 443);
  assert.equal((o2.headers as Record<string, string>).Authorization, 'Bearer tok-b');

  // A context without a namespace: `default`.
  const third = await KubeClient.load({ context: 'beta' }, { env });
  assert.equal(third.namespace, 'default');

  // --kubeconfig takes several files too, and beats KUBECONFIG.
  const viaFlag = await KubeClient.load({ kubeconfig: [b, a].join(path.delimiter) }, { env });
  assert.equal(viaFlag.contextName, 'beta');
  first.close();
  second.close();
  third.close();
  viaFlag.close();
});

test('clear one-line CONFIG errors', async (t) => {
  const dir = tmpdir(t);
  const file = writeKubeconfig(path.join(dir, 'config'), {
    clusters: [['c1', { server: 'https://x.example' }], ['plain', { server: 'http://x.example' }]],
    users: [['u1', { token: 't' }]],
    contexts: [
      ['one', { cluster: 'c1', user: 'u1' }],
      ['nocluster', { cluster: 'nope', user: 'u1' }],
      ['nouser', { cluster: 'c1', user: 'nope' }],
      ['http', { cluster: 'plain', user: 'u1' }],
    ],
  });
  await rejectsCode(KubeClient.load({ kubeconfig: file }), 'CONFIG', /no current-context: pass --context \(contexts: one, nocluster/);
  await rejectsCode(KubeClient.load({ kubeconfig: file, context: 'two' }), 'CONFIG', /context "two" not found/);
  await rejectsCode(KubeClient.load({ kubeconfig: file, context: 'nocluster' }), 'CONFIG', /cluster "nope"/);
  await rejectsCode(KubeClient.load({ kubeconfig: file, context: 'nouser' }), 'CONFIG', /user "nope"/);
  await rejectsCode(KubeClient.load({ kubeconfig: file, context: 'http' }), 'CONFIG', /not https/);
  await rejectsCode(KubeClient.load({ kubeconfig: path.join(dir, 'absent') }), 'CONFIG', /absent does not exist/);
  await rejectsCode(
    KubeClient.load({}, { env: {}, homeDir: dir }),
    'CONFIG',
    /no kubeconfig found .*set KUBECONFIG or pass --kubeconfig/,
  );
  fs.writeFileSync(path.join(dir, 'garbage'), ': : :\n\t- [');
  await rejectsCode(KubeClient.load({ kubeconfig: path.join(dir, 'garbage') }), 'CONFIG', /cannot read kubeconfig/);
});

test('~/.kube/config is the default', async (t) => {
  const home = tmpdir(t);
  fs.mkdirSync(path.join(home, '.kube'));
  writeKubeconfig(path.join(home, '.kube', 'config'), {
    current: 'home',
    clusters: [['c', { server: 'https://home.example' }]],
    contexts: [['home', { cluster: 'c' }]],
  });
  const client = await KubeClient.load({}, { env: {}, homeDir: home });
  assert.equal(client.contextName, 'home');
  assert.equal(client.userName, '');
  const o = await client.requestOptions('GET', '/version');
  assert.equal((o.headers as Record<string, string>).Authorization, undefined);
  client.close();
});

test('in-cluster service account when there is no kubeconfig', async (t) => {
  const root = tmpdir(t);
  const sa = path.join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
  fs.mkdirSync(sa, { recursive: true });
  fs.writeFileSync(path.join(sa, 'token'), 'sa-token');
  fs.writeFileSync(path.join(sa, 'namespace'), 'apps\n');
  fs.writeFileSync(path.join(sa, 'ca.crt'), 'not really a cert');
  const where = {
    env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' },
    homeDir: root,
    serviceAccountPrefix: root,
  };
  const loaded = await loadKubeConfig({}, where);
  assert.equal(loaded.source, 'in-cluster');
  assert.equal(loaded.namespace, 'apps');
  const client = await KubeClient.load({}, where);
  assert.equal(client.clusterServer, 'https://[fd00::1]:443');
  const o = await client.requestOptions('GET', '/api');
  assert.equal(o.hostname, 'fd00::1');
  assert.equal((o.headers as Record<string, string>).Authorization, 'Bearer sa-token');
  assert.equal(String(o.ca), 'not really a cert');
  client.close();
});

test('request options: path prefix, TLS settings, client certs, impersonation, proxy agent', async (t) => {
  const dir = tmpdir(t);
  const caFile = path.join(dir, 'ca.pem');
  fs.writeFileSync(caFile, 'CA-PEM');
  const file = writeKubeconfig(path.join(dir, 'config'), {
    current: 'main',
    clusters: [
      [
        'prefixed',
        {
          server: 'https://127.0.0.1:6443/k8s/clusters/c-123/',
          'certificate-authority': 'ca.pem', // relative to the kubeconfig file
          'tls-server-name': 'kubernetes.default.svc',
        },
      ],
      ['insecure', { server: 'https://[::1]:7443', 'insecure-skip-tls-verify': true, 'proxy-url': 'http://127.0.0.1:3128' }],
    ],
    users: [
      [
        'certs',
        {
          'client-certificate-data': Buffer.from('CERT').toString('base64'),
          'client-key-data': Buffer.from('KEY').toString('base64'),
          as: 'jane',
        },
      ],
    ],
    contexts: [
      ['main', { cluster: 'prefixed', user: 'certs' }],
      ['other', { cluster: 'insecure', user: 'certs' }],
    ],
  });
  const client = await KubeClient.load({ kubeconfig: file });
  const o = await client.requestOptions('POST', '/api/v1/namespaces/demo/pods/web-0/portforward', {
    Connection: 'Upgrade',
  });
  assert.equal(o.method, 'POST');
  assert.equal(o.hostname, '127.0.0.1');
  assert.equal(o.port, 6443);
  assert.equal(o.path, '/k8s/clusters/c-123/api/v1/namespaces/demo/pods/web-0/portforward');
  assert.equal(String(o.ca), 'CA-PEM');
  assert.equal(String(o.cert), 'CERT');
  assert.equal(String(o.key), 'KEY');
  assert.equal(o.servername, 'kubernetes.default.svc');
  assert.equal(o.rejectUnauthorized, undefined);
  assert.equal(o.agent, undefined);
  const h = o.headers as Record<string, string>;
  assert.equal(h['Impersonate-User'], 'jane');
  assert.equal(h.Connection, 'Upgrade');
  assert.equal(h.Authorization, undefined);
  client.close();

  const other = await KubeClient.load({ kubeconfig: file, context: 'other' });
  const o2 = await other.requestOptions('GET', '/api');
  assert.equal(o2.hostname, '::1');
  assert.equal(o2.port, 7443);
  assert.equal(o2.path, '/api');
  assert.equal(o2.rejectUnauthorized, false);
  assert.ok(o2.agent, 'proxy-url gives an agent');
  // The proxy agent is reused while the credentials are.
  const o3 = await other.requestOptions('GET', '/api');
  assert.equal(o3.agent, o2.agent);
  other.close();
});

test('token-file: read at load, cached, re-read after invalidateCredentials()', async (t) => {
  const dir = tmpdir(t);
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, 'one');
  const file = writeKubeconfig(path.join(dir, 'config'), {
    current: 'c',
    clusters: [['c', { server: 'https://k.example' }]],
    users: [['u', { 'token-file': tokenFile }]],
    contexts: [['c', { cluster: 'c', user: 'u' }]],
  });
  const client = await KubeClient.load({ kubeconfig: file });
  const auth = async (): Promise<string | undefined> =>
    ((await client.requestOptions('GET', '/api')).headers as Record<string, string>).Authorization;
  assert.equal(await auth(), 'Bearer one');
  fs.writeFileSync(tokenFile, 'two');
  assert.equal(await auth(), 'Bearer one', 'cached');
  client.invalidateCredentials();
  assert.equal(await auth(), 'Bearer two');
  client.close();
});

function execPlugin(dir: string, opts: { expiresInMs?: number; fail?: string } = {}): { script: string; countFile: string; infoFile: string } {
  const script = path.join(dir, 'plugin.mjs');
  const countFile = path.join(dir, 'runs');
  const infoFile = path.join(dir, 'exec-info');
  fs.writeFileSync(countFile, '0');
  fs.writeFileSync(
    script,
    `import fs from 'node:fs';
const n = Number(fs.readFileSync(${JSON.stringify(countFile)}, 'utf8')) + 1;
fs.writeFileSync(${JSON.stringify(countFile)}, String(n));
fs.writeFileSync(${JSON.stringify(infoFile)}, process.env.KUBERNETES_EXEC_INFO ?? '');
${opts.fail ? `process.stderr.write(${JSON.stringify(opts.fail)}); process.exit(1);` : ''}
const status = { token: 'exec-token-' + n };
${opts.expiresInMs !== undefined ? `status.expirationTimestamp = new Date(Date.now() + ${opts.expiresInMs}).toISOString();` : ''}
process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status }));
`,
  );
  return { script, countFile, infoFile };
}

function execKubeconfig(dir: string, script: string, extra: Record<string, unknown> = {}): string {
  return writeKubeconfig(path.join(dir, 'config'), {
    current: 'c',
    clusters: [['c', { server: 'https://k.example', 'certificate-authority-data': Buffer.from('CA').toString('base64') }]],
    users: [
      [
        'u',
        {
          exec: {
            apiVersion: 'client.authentication.k8s.io/v1',
            command: process.execPath,
            args: [script],
            interactiveMode: 'Never',
            provideClusterInfo: true,
            ...extra,
          },
        },
      ],
    ],
    contexts: [['c', { cluster: 'c', user: 'u' }]],
  });
}

test('exec plugin without expiry: one run for concurrent requests, cached, re-run after invalidate and after the TTL', async (t) => {
  const dir = tmpdir(t);
  const { script, countFile, infoFile } = execPlugin(dir);
  const file = execKubeconfig(dir, script);
  const client = await KubeClient.load({ kubeconfig: file }, { credentialTtlMs: 60_000 });
  const runs = (): number => Number(fs.readFileSync(countFile, 'utf8'));
  const all = await Promise.all(Array.from({ length: 20 }, () => client.requestOptions('GET', '/api')));
  for (const o of all) assert.equal((o.headers as Record<string, string>).Authorization, 'Bearer exec-token-1');
  assert.equal(runs(), 1, 'concurrent first uses share one plugin run');
  await client.requestOptions('GET', '/api');
  assert.equal(runs(), 1, 'cached');
  client.invalidateCredentials();
  const o = await client.requestOptions('GET', '/api');
  assert.equal((o.headers as Record<string, string>).Authorization, 'Bearer exec-token-2');
  assert.equal(runs(), 2);

  // client-go's KUBERNETES_EXEC_INFO, with the cluster when provideClusterInfo is set.
  const info = JSON.parse(fs.readFileSync(infoFile, 'utf8')) as {
    kind: string;
    apiVersion: string;
    spec: { interactive: boolean; cluster?: { server: string; 'certificate-authority-data'?: string } };
  };
  assert.equal(info.kind, 'ExecCredential');
  assert.equal(info.apiVersion, 'client.authentication.k8s.io/v1');
  assert.equal(info.spec.interactive, false);
  assert.equal(info.spec.cluster?.server, 'https://k.example');
  assert.equal(info.spec.cluster?.['certificate-authority-data'], Buffer.from('CA').toString('base64'));
  client.close();

  const short = await KubeClient.load({ kubeconfig: file }, { credentialTtlMs: 50 });
  await short.requestOptions('GET', '/api');
  assert.equal(runs(), 3);
  await new Promise((r) => setTimeout(r, 80));
  await short.requestOptions('GET', '/api');
  assert.equal(runs(), 4, 'a credential without expiry is re-fetched after the TTL');
  short.close();
});

test('exec plugin with an expiry: client-node caches it; invalidate still forces a run', async (t) => {
  const dir = tmpdir(t);
  const { script, countFile } = execPlugin(dir, { expiresInMs: 3_600_000 });
  const file = execKubeconfig(dir, script);
  const client = await KubeClient.load({ kubeconfig: file }, { credentialTtlMs: 10 });
  const runs = (): number => Number(fs.readFileSync(countFile, 'utf8'));
  await client.requestOptions('GET', '/api');
  await new Promise((r) => setTimeout(r, 30));
  await client.requestOptions('GET', '/api');
  assert.equal(runs(), 1, 'an unexpired credential is not fetched again');
  client.invalidateCredentials();
  const o = await client.requestOptions('GET', '/api');
  assert.equal((o.headers as Record<string, string>).Authorization, 'Bearer exec-token-2');
  assert.equal(runs(), 2);
  client.close();
});

test('exec plugin failures are one CONFIG line without secrets', async (t) => {
  const dir = tmpdir(t);
  const { script } = execPlugin(dir, { fail: 'some noise\nerror: login expired, run `cloud login`\n' });
  const file = execKubeconfig(dir, script);
  const client = await KubeClient.load({ kubeconfig: file });
  await rejectsCode(client.requestOptions('GET', '/api'), 'CONFIG', /credential plugin ".*" failed: error: login expired, run `cloud login`/);
  client.close();

  const dir2 = tmpdir(t);
  const missing = writeKubeconfig(path.join(dir2, 'config'), {
    current: 'c',
    clusters: [['c', { server: 'https://k.example' }]],
    users: [
      [
        'u',
        {
          exec: {
            apiVersion: 'client.authentication.k8s.io/v1beta1',
            command: 'kubesocks-no-such-plugin',
            installHint: 'Install it with: brew install no-such-plugin',
          },
        },
      ],
    ],
    contexts: [['c', { cluster: 'c', user: 'u' }]],
  });
  const c2 = await KubeClient.load({ kubeconfig: missing });
  await rejectsCode(
    c2.requestOptions('GET', '/api'),
    'CONFIG',
    /"kubesocks-no-such-plugin" was not found on PATH\. Install it with: brew install no-such-plugin/,
  );
  c2.close();
});

test('a broken token-file does not hide the other contexts', async (t) => {
  const dir = tmpdir(t);
  const file = writeKubeconfig(path.join(dir, 'config'), {
    current: 'good',
    clusters: [['c', { server: 'https://k.example' }]],
    users: [
      ['ok', { token: 't' }],
      ['broken', { 'token-file': path.join(dir, 'gone') }],
    ],
    contexts: [
      ['good', { cluster: 'c', user: 'ok' }],
      ['bad', { cluster: 'c', user: 'broken' }],
    ],
  });
  const client = await KubeClient.load({ kubeconfig: file });
  assert.equal(client.contextName, 'good');
  client.close();
  await rejectsCode(KubeClient.load({ kubeconfig: file, context: 'bad' }), 'CONFIG', /user "broken".*ENOENT/);
});
