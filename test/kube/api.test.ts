import { test, type TestContext } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { KubeClient } from '../../src/kube/client.js';
import { KubeApiError } from '../../src/kube/responses.js';
import { KubesocksError } from '../../src/errors.js';
import { simCerts } from '../../src/sim/certs.js';

interface Seen {
  path: string;
  auth: string | undefined;
}

/** A tiny API server: answers by path, accepts only `Bearer ${accepted.token}`. */
async function fakeApi(t: { after(fn: () => void): void }) {
  const certs = await simCerts();
  const seen: Seen[] = [];
  const accepted = { token: 'new' };
  const server = https.createServer({ cert: certs.certPem, key: certs.keyPem }, (req, res) => {
    seen.push({ path: req.url ?? '', auth: req.headers.authorization });
    const status = (code: number, reason: string, message: string): void => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code }));
    };
    if (req.headers.authorization !== `Bearer ${accepted.token}`) return status(401, 'Unauthorized', 'Unauthorized');
    const p = (req.url ?? '').replace(/^\/prefix/, '');
    if (p === '/api/v1/namespaces/demo') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Namespace', metadata: { name: 'demo' } }));
    } else if (p === '/api/v1/namespaces/secret') {
      status(403, 'Forbidden', 'namespaces "secret" is forbidden: User "viewer" cannot get resource "namespaces" in API group "" at the cluster scope');
    } else if (p === '/api/v1/namespaces/boom') {
      status(500, 'InternalError', 'etcdserver: request timed out');
    } else if (p === '/api/v1/namespaces/slow') {
      // never answers
    } else if (p === '/api/v1/namespaces/notjson') {
      res.writeHead(200);
      res.end('<html>');
    } else {
      status(404, 'NotFound', `namespaces "${p.split('/').pop() ?? ''}" not found`);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  return { certs, seen, accepted, port, server };
}

/** A fake API server and a client of it whose token ("new") is read from a file. */
async function clientOfFakeApi(t: TestContext): Promise<{ api: Awaited<ReturnType<typeof fakeApi>>; tokenFile: string; client: KubeClient }> {
  const api = await fakeApi(t);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kubesocks-api-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, 'new');
  const client = await KubeClient.load({ kubeconfig: kubeconfig(dir, `https://127.0.0.1:${api.port}`, api.certs.caPem, tokenFile) });
  t.after(() => client.close());
  return { api, tokenFile, client };
}

function kubeconfig(dir: string, server: string, caPem: string, tokenFile: string): string {
  const file = path.join(dir, 'config');
  fs.writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'sim',
      clusters: [{ name: 'sim', cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') } }],
      users: [{ name: 'dev', user: { 'token-file': tokenFile } }],
      contexts: [{ name: 'sim', context: { cluster: 'sim', user: 'dev' } }],
    }),
  );
  return file;
}

async function rejection(p: Promise<unknown>): Promise<KubesocksError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof KubesocksError, String(err));
    return err;
  }
  assert.fail('expected a rejection');
}

test('getJSON: path prefix, 401 → refresh once → retry; a second 401 is UNAUTHORIZED naming the context', async (t) => {
  const api = await fakeApi(t);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kubesocks-api-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, 'old');
  const client = await KubeClient.load({
    kubeconfig: kubeconfig(dir, `https://127.0.0.1:${api.port}/prefix`, api.certs.caPem, tokenFile),
  });
  t.after(() => client.close());

  // The token was rotated on disk after we read it: the 401 makes us re-read it.
  fs.writeFileSync(tokenFile, 'new');
  const ns = await client.getJSON<{ metadata: { name: string } }>('/api/v1/namespaces/demo');
  assert.equal(ns.metadata.name, 'demo');
  assert.deepEqual(
    api.seen.map((s) => [s.path, s.auth]),
    [
      ['/prefix/api/v1/namespaces/demo', 'Bearer old'],
      ['/prefix/api/v1/namespaces/demo', 'Bearer new'],
    ],
  );

  // Revoked for good: exactly one refresh, then a clear error.
  api.seen.length = 0;
  api.accepted.token = 'something-else';
  const err = await rejection(client.getJSON('/api/v1/namespaces/demo'));
  assert.equal(err.code, 'UNAUTHORIZED');
  assert.match(err.message, /context "sim" \(user "dev"\) even after refreshing them \(Unauthorized\): log in again/);
  assert.ok(!err.message.includes('new'), 'no token in the message');
  assert.equal(api.seen.length, 2);
  assert.ok(err instanceof KubeApiError && err.status === 401);
});

test('getJSON: Status messages verbatim; 403/404/500, bad JSON, timeouts, abort, unreachable, bad CA', async (t) => {
  const { api, tokenFile, client } = await clientOfFakeApi(t);

  const forbidden = await rejection(client.getJSON('/api/v1/namespaces/secret'));
  assert.equal(forbidden.code, 'FORBIDDEN');
  assert.equal(
    forbidden.message,
    'namespaces "secret" is forbidden: User "viewer" cannot get resource "namespaces" in API group "" at the cluster scope',
  );
  const missing = await rejection(client.getJSON('/api/v1/namespaces/nope'));
  assert.equal(missing.code, 'NOT_FOUND');
  assert.equal(missing.message, 'namespaces "nope" not found');
  const boom = await rejection(client.getJSON('/api/v1/namespaces/boom'));
  assert.equal(boom.code, 'API_UNREACHABLE');
  assert.match(boom.message, /HTTP 500: etcdserver: request timed out/);
  const bad = await rejection(client.getJSON('/api/v1/namespaces/notjson'));
  assert.equal(bad.code, 'API_UNREACHABLE');

  const ac = new AbortController();
  setTimeout(() => ac.abort(), 50);
  const aborted = await rejection(client.getJSON('/api/v1/namespaces/slow', { signal: ac.signal }));
  assert.equal(aborted.code, 'CLOSED');
  const timedOut = await rejection(client.getJSON('/api/v1/namespaces/slow', { signal: AbortSignal.timeout(50) }));
  assert.equal(timedOut.code, 'TIMEOUT');

  // Nothing listens there.
  const closedPort = await new Promise<number>((resolve) => {
    const s = https.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const d2 = fs.mkdtempSync(path.join(os.tmpdir(), 'kubesocks-api-'));
  t.after(() => fs.rmSync(d2, { recursive: true, force: true }));
  const gone = await KubeClient.load({ kubeconfig: kubeconfig(d2, `https://127.0.0.1:${closedPort}`, api.certs.caPem, tokenFile) });
  const unreachable = await rejection(gone.getJSON('/api'));
  assert.equal(unreachable.code, 'API_UNREACHABLE');
  assert.match(unreachable.message, /cannot reach the API server https:\/\/127\.0\.0\.1:\d+ of context "sim": .*ECONNREFUSED/);
  gone.close();

  // A CA that did not sign the server's certificate: a kubeconfig problem.
  const d3 = fs.mkdtempSync(path.join(os.tmpdir(), 'kubesocks-api-'));
  t.after(() => fs.rmSync(d3, { recursive: true, force: true }));
  const wrongCa = await KubeClient.load({ kubeconfig: kubeconfig(d3, `https://127.0.0.1:${api.port}`, api.certs.certPem, tokenFile) });
  const tls = await rejection(wrongCa.getJSON('/api'));
  assert.equal(tls.code, 'CONFIG');
  assert.match(tls.message, /cannot verify the API server/);
  wrongCa.close();
});

test('getJSON survives the server closing an idle keep-alive connection', async (t) => {
  const { api, client } = await clientOfFakeApi(t);
  await client.getJSON('/api/v1/namespaces/demo');
  api.server.closeIdleConnections();
  await new Promise((r) => setTimeout(r, 20));
  const again = await client.getJSON<{ kind: string }>('/api/v1/namespaces/demo');
  assert.equal(again.kind, 'Namespace');
});
