/**
 * src/kube/lazy-kubeconfig.ts: the same request options as @kubernetes/client-node's
 * own KubeConfig for every auth method, while loading only the modules the
 * chosen user entry needs (the point of it: start-up time and idle RSS).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import type * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { KubeConfig as ClientNodeKubeConfig } from '@kubernetes/client-node';
import { KubeConfig } from '../../src/kube/lazy-kubeconfig.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function tmpdir(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kubesocks-kc-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** An unsigned JWT expiring in an hour: OIDC uses it without contacting the issuer. */
function idToken(): string {
  const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'none' })}.${b64({ exp: Math.floor(Date.now() / 1000) + 3600, sub: 'jane' })}.sig`;
}

/** One context per user entry; every auth method kubectl supports that client-node implements. */
function kubeconfigText(dir: string): string {
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, 'file-token');
  fs.writeFileSync(path.join(dir, 'ca.pem'), 'CA-PEM');
  fs.writeFileSync(path.join(dir, 'cert.pem'), 'CERT-PEM');
  fs.writeFileSync(path.join(dir, 'key.pem'), 'KEY-PEM');
  const plugin = path.join(dir, 'plugin.sh');
  fs.writeFileSync(
    plugin,
    '#!/bin/sh\necho \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"exec-token"}}\'\n',
    { mode: 0o755 },
  );
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  const users: Array<[string, Record<string, unknown>]> = [
    ['token', { token: 'static-token' }],
    ['basic', { username: 'admin', password: 'secret' }],
    ['impersonate', { token: 't', as: 'jane' }],
    ['certs-data', { 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY') }],
    ['certs-file', { 'client-certificate': 'cert.pem', 'client-key': 'key.pem' }],
    ['token-file', { 'token-file': tokenFile }],
    ['provider-token-file', { 'auth-provider': { name: 'tokenFile', config: { tokenFile } } }],
    ['exec', { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, interactionMode: 'Never' } }],
    ['oidc', { 'auth-provider': { name: 'oidc', config: { 'id-token': idToken(), 'client-id': 'k', 'idp-issuer-url': 'https://127.0.0.1:1' } } }],
    ['azure', { 'auth-provider': { name: 'azure', config: { 'access-token': 'az-token', 'expires-on': String(Math.floor(Date.now() / 1000) + 3600) } } }],
    ['gcp', { 'auth-provider': { name: 'gcp', config: { 'access-token': 'gcp-token', expiry: new Date(Date.now() + 3_600_000).toISOString() } } }],
  ];
  const clusters: Array<[string, Record<string, unknown>]> = [
    ['plain', { server: 'https://127.0.0.1:6443', 'certificate-authority': 'ca.pem', 'tls-server-name': 'api.internal' }],
    ['insecure', { server: 'https://127.0.0.1:6443', 'insecure-skip-tls-verify': true }],
    ['via-http-proxy', { server: 'https://127.0.0.1:6443', 'certificate-authority-data': b64('CA'), 'proxy-url': 'http://127.0.0.1:3128' }],
    ['via-socks', { server: 'https://127.0.0.1:6443', 'proxy-url': 'socks5://127.0.0.1:1080' }],
  ];
  const contexts: Array<[string, Record<string, unknown>]> = users.map(([name]) => [name, { cluster: 'plain', user: name }]);
  contexts.push(['insecure', { cluster: 'insecure', user: 'token' }], ['via-http-proxy', { cluster: 'via-http-proxy', user: 'token' }], ['via-socks', { cluster: 'via-socks', user: 'token' }]);
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'token',
    clusters: clusters.map(([name, cluster]) => ({ name, cluster })),
    users: users.map(([name, user]) => ({ name, user })),
    contexts: contexts.map(([name, context]) => ({ name, context })),
  });
}

/** The parts of request options a request is made of, comparable between the two implementations. */
function comparable(o: https.RequestOptions): Record<string, unknown> {
  const headers = { ...(o.headers as Record<string, unknown>) };
  return {
    headers,
    auth: o.auth,
    ca: o.ca === undefined ? undefined : String(o.ca),
    cert: o.cert === undefined ? undefined : String(o.cert),
    key: o.key === undefined ? undefined : String(o.key),
    servername: o.servername,
    rejectUnauthorized: o.rejectUnauthorized,
  };
}

test('every auth method gives the same request options as client-node', async (t) => {
  const dir = tmpdir(t);
  const text = kubeconfigText(dir);
  const ours = new KubeConfig();
  ours.loadFromString(text);
  ours.makePathsAbsolute(dir);
  const theirs = new ClientNodeKubeConfig();
  theirs.loadFromString(text);
  theirs.makePathsAbsolute(dir);
  assert.deepEqual(ours.getClusters(), theirs.getClusters());
  assert.deepEqual(ours.getUsers(), theirs.getUsers());
  assert.deepEqual(ours.getContexts(), theirs.getContexts());
  assert.equal(ours.getCurrentContext(), theirs.getCurrentContext());

  const seen = new Set<string>();
  for (const ctx of theirs.getContexts()) {
    ours.setCurrentContext(ctx.name);
    theirs.setCurrentContext(ctx.name);
    const a: https.RequestOptions = {};
    const b: https.RequestOptions = {};
    await ours.applyToHTTPSOptions(a);
    await theirs.applyToHTTPSOptions(b);
    assert.deepEqual(comparable(a), comparable(b), `context ${ctx.name}`);
    const auth = String((a.headers as Record<string, unknown> | undefined)?.Authorization ?? a.auth ?? '');
    seen.add(auth);
    if (theirs.getCurrentCluster()?.proxyUrl) {
      assert.ok(a.agent, `context ${ctx.name}: a proxy agent`);
      assert.equal(a.agent?.constructor.name, b.agent?.constructor.name, `context ${ctx.name}: the same kind of proxy agent`);
    } else {
      assert.equal(a.agent, undefined, `context ${ctx.name}: no agent without a proxy-url`);
    }
  }
  // Each method really produced its credential (not all empty and equal).
  for (const expected of ['Bearer static-token', 'admin:secret', 'Bearer file-token', 'Bearer exec-token', 'Bearer az-token', 'Bearer gcp-token']) {
    assert.ok(seen.has(expected), `${expected} among ${[...seen].join(', ')}`);
  }
  assert.ok([...seen].some((s) => s.startsWith('Bearer ey')), 'the OIDC id-token');
});

/**
 * Loads the kubeconfig with KubeClient in a fresh node process and makes one
 * set of request options; returns every module URL it resolved (recorded by
 * a module.register resolve hook) and the credential it produced.
 */
function loadInFreshProcess(dir: string, kubeconfig: string, context: string): { loaded: string[]; auth: string } {
  // The hooks run on a thread of their own: they append to a file synchronously, so no line is lost when the process exits.
  const log = path.join(dir, `loaded-${context}.txt`);
  fs.rmSync(log, { force: true });
  const hooks = path.join(dir, 'hooks.mjs');
  fs.writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(${JSON.stringify(log)}, r.url + '\\n');
  return r;
}\n`,
  );
  const register = path.join(dir, 'register.mjs');
  fs.writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  const script = path.join(dir, 'load.mts');
  fs.writeFileSync(
    script,
    `import { KubeClient } from ${JSON.stringify(path.join(ROOT, 'src/kube/client.ts'))};
const c = await KubeClient.load({ kubeconfig: ${JSON.stringify(kubeconfig)}, context: ${JSON.stringify(context)} });
const o = await c.requestOptions('GET', '/api');
process.stderr.write('AUTH ' + String(o.headers?.Authorization ?? o.auth ?? '') + '\\n');
c.close();\n`,
  );
  const r = spawnSync(process.execPath, ['--import', register, '--import', 'tsx', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return {
    loaded: fs.readFileSync(log, 'utf8').split('\n').filter((l) => l !== ''),
    auth: r.stderr.split('\n').find((l) => l.startsWith('AUTH '))?.slice(5) ?? '',
  };
}

/** Modules that only some kubeconfigs need, by what needs them. */
const HEAVY = [
  /client-node\/dist\/index\.js$/,
  /client-node\/dist\/config\.js$/,
  /client-node\/dist\/gen\//,
  /\/node-fetch\//,
  /\/openid-client\//,
  /\/jsonpath-plus\//,
  /\/hpagent\//,
  /\/socks-proxy-agent\//,
  /client-node\/dist\/(exec|oidc|azure|gcp|file)_auth\.js$/,
];

function heavyLoaded(loaded: string[]): string[] {
  return loaded.filter((url) => HEAVY.some((re) => re.test(url)));
}

test('a token kubeconfig loads none of the auth plugins, proxy agents or generated API classes', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'config');
  fs.writeFileSync(file, kubeconfigText(dir));
  const { loaded, auth } = loadInFreshProcess(dir, file, 'token');
  assert.equal(auth, 'Bearer static-token');
  assert.ok(loaded.some((u) => u.endsWith('src/kube/lazy-kubeconfig.ts')), 'the hook saw the modules');
  assert.ok(loaded.some((u) => u.endsWith('client-node/dist/config_types.js')), 'parsing is client-node\'s');
  assert.deepEqual(heavyLoaded(loaded), []);
});

test('an exec user loads the exec authenticator and nothing else heavy; oidc loads openid-client; a socks proxy its agent', async (t) => {
  const dir = tmpdir(t);
  const file = path.join(dir, 'config');
  fs.writeFileSync(file, kubeconfigText(dir));
  const exec = loadInFreshProcess(dir, file, 'exec');
  assert.equal(exec.auth, 'Bearer exec-token');
  assert.deepEqual(heavyLoaded(exec.loaded).map((u) => path.basename(u)), ['exec_auth.js']);
  const oidc = loadInFreshProcess(dir, file, 'oidc');
  assert.match(oidc.auth, /^Bearer ey/);
  assert.ok(oidc.loaded.some((u) => /client-node\/dist\/oidc_auth\.js$/.test(u)));
  assert.ok(oidc.loaded.some((u) => /\/openid-client\//.test(u)));
  assert.ok(!oidc.loaded.some((u) => /client-node\/dist\/(gen\/|index\.js)/.test(u)));
  const socks = loadInFreshProcess(dir, file, 'via-socks');
  assert.ok(socks.loaded.some((u) => /\/socks-proxy-agent\//.test(u)), socks.loaded.filter((u) => u.includes('node_modules')).join('\n'));
  assert.ok(!socks.loaded.some((u) => /\/hpagent\//.test(u)));
});
