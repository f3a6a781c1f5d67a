import { test, type TestContext } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeClient } from '../../src/kube/client.js';
import { ListWatch } from '../../src/kube/watch.js';
import { KubesocksError } from '../../src/errors.js';
import { simCerts } from '../../src/sim/certs.js';

interface Obj {
  metadata: { name: string; resourceVersion: string };
  spec?: { v: number };
}

/**
 * A scripted collection endpoint at /api/v1/namespaces/x/things: `list`
 * answers lists (honouring limit/continue), `watchers` are the open watch
 * responses; tests push events and decide answers.
 */
async function fakeCollection(t: { after(fn: () => void | Promise<void>): void }) {
  const certs = await simCerts();
  const state = {
    items: new Map<string, Obj>(),
    rv: 10,
    listAnswer: null as null | { status: number; message: string },
    watchAnswer: null as null | { status: number; message: string },
    requests: [] as string[],
    watchers: [] as ServerResponse[],
  };
  const server = https.createServer({ cert: certs.certPem, key: certs.keyPem }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://x');
    state.requests.push(`${url.pathname}?${url.searchParams.toString()}`);
    const fail = (a: { status: number; message: string }): void => {
      res.writeHead(a.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', status: 'Failure', code: a.status, message: a.message }));
    };
    if (url.searchParams.get('watch')) {
      if (state.watchAnswer) return fail(state.watchAnswer);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      state.watchers.push(res);
      res.on('close', () => {
        state.watchers = state.watchers.filter((w) => w !== res);
      });
      return;
    }
    if (state.listAnswer) return fail(state.listAnswer);
    const limit = Number(url.searchParams.get('limit') ?? '0');
    const start = Number(url.searchParams.get('continue') ?? '0');
    const all = [...state.items.values()].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
    const page = limit > 0 ? all.slice(start, start + limit) : all.slice(start);
    const next = limit > 0 && start + limit < all.length ? String(start + limit) : undefined;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'List', metadata: { resourceVersion: String(state.rv), ...(next ? { continue: next } : {}) }, items: page }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kubesocks-watch-'));
  const file = path.join(dir, 'config');
  fs.writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'fake',
      clusters: [{ name: 'fake', cluster: { server: `https://127.0.0.1:${port}`, 'certificate-authority-data': Buffer.from(certs.caPem).toString('base64') } }],
      users: [{ name: 'u', user: { token: 't' } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'u' } }],
    }),
  );
  const client = await KubeClient.load({ kubeconfig: file });
  t.after(() => {
    client.close();
    server.closeAllConnections();
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const put = (name: string, v: number): Obj => {
    const o = { metadata: { name, resourceVersion: String(++state.rv) }, spec: { v } };
    state.items.set(name, o);
    return o;
  };
  const send = (type: string, object: unknown): void => {
    for (const w of state.watchers) w.write(`${JSON.stringify({ type, object })}\n`);
  };
  return { state, client, put, send, path: '/api/v1/namespaces/x/things' };
}

function once<T = unknown>(emitter: ListWatch<Obj>, event: string): Promise<T> {
  return new Promise((resolve) => emitter.once(event, (v: T) => resolve(v)));
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('lists page by page, then applies watch events', async (t) => {
  const f = await fakeCollection(t);
  for (let i = 0; i < 5; i++) f.put(`o${i}`, i);
  const lw = new ListWatch<Obj>(f.client, f.path, { pageSize: 2 });
  t.after(() => lw.stop());
  const synced = once(lw, 'synced');
  lw.start();
  await synced;
  assert.equal(lw.synced, true);
  assert.deepEqual(lw.items().map((o) => o.metadata.name).sort(), ['o0', 'o1', 'o2', 'o3', 'o4']);
  assert.equal(f.state.requests.filter((r) => r.includes('limit=2')).length, 3, 'three pages');
  await until(() => f.state.watchers.length === 1);
  const watchReq = f.state.requests.find((r) => r.includes('watch=1')) ?? '';
  assert.match(watchReq, /resourceVersion=15/);
  assert.match(watchReq, /allowWatchBookmarks=true/);

  const events: string[] = [];
  lw.on('add', (o: Obj) => events.push(`add ${o.metadata.name}`));
  lw.on('update', (o: Obj, old: Obj) => events.push(`update ${o.metadata.name} ${old.spec?.v}→${o.spec?.v}`));
  lw.on('delete', (o: Obj) => events.push(`delete ${o.metadata.name}`));
  f.send('ADDED', f.put('o9', 9));
  f.send('MODIFIED', f.put('o1', 100));
  f.state.items.delete('o2');
  f.send('DELETED', { metadata: { name: 'o2', resourceVersion: String(++f.state.rv) } });
  f.send('BOOKMARK', { metadata: { resourceVersion: '50' } });
  await until(() => events.length === 3);
  assert.deepEqual(events, ['add o9', 'update o1 1→100', 'delete o2']);
  assert.equal(lw.get('o1')?.spec?.v, 100);

  // The server ends the watch cleanly: re-watch from the last resourceVersion (the bookmark's), no relist.
  const lists = f.state.requests.filter((r) => !r.includes('watch=1')).length;
  for (const w of f.state.watchers) w.end();
  await until(() => f.state.requests.filter((r) => r.includes('resourceVersion=50')).length === 1);
  assert.equal(f.state.requests.filter((r) => !r.includes('watch=1')).length, lists, 'no relist');
});

test('410 (event or response) relists and reports what vanished meanwhile', async (t) => {
  const f = await fakeCollection(t);
  f.put('a', 1);
  f.put('b', 1);
  const lw = new ListWatch<Obj>(f.client, f.path, { backoffMs: 10 });
  t.after(() => lw.stop());
  const synced = once(lw, 'synced');
  lw.start();
  await synced;
  await until(() => f.state.watchers.length === 1);

  // Changes the watch never delivers, then "too old".
  f.state.items.delete('a');
  f.put('c', 1);
  const deleted: string[] = [];
  const added: string[] = [];
  lw.on('delete', (o: Obj) => deleted.push(o.metadata.name));
  lw.on('add', (o: Obj) => added.push(o.metadata.name));
  const resynced = once(lw, 'synced');
  f.send('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version: 12 (20)' });
  await resynced;
  assert.deepEqual(deleted, ['a']);
  assert.deepEqual(added, ['c']);
  assert.deepEqual(lw.items().map((o) => o.metadata.name).sort(), ['b', 'c']);

  // A 410 answer to the watch request itself also relists.
  await until(() => f.state.watchers.length === 1);
  f.state.watchAnswer = { status: 410, message: 'too old' };
  f.state.items.delete('b');
  const again = once(lw, 'synced');
  for (const w of f.state.watchers) w.destroy();
  await again;
  f.state.watchAnswer = null;
  assert.deepEqual(lw.items().map((o) => o.metadata.name), ['c']);
});

test('errors are retried with backoff and keep the Status message; 403 stops with forbidden', async (t) => {
  const f = await fakeCollection(t);
  f.put('a', 1);
  f.state.listAnswer = { status: 500, message: 'etcdserver: leader changed' };
  const lw = new ListWatch<Obj>(f.client, f.path, { backoffMs: 10, maxBackoffMs: 20 });
  t.after(() => lw.stop());
  const errors: KubesocksError[] = [];
  lw.on('error', (e: KubesocksError) => errors.push(e));
  lw.start();
  await until(() => errors.length >= 2);
  assert.equal(errors[0]?.code, 'API_UNREACHABLE');
  assert.match(errors[0]?.message ?? '', /etcdserver: leader changed/);
  assert.equal(lw.synced, false);
  f.state.listAnswer = null;
  await once(lw, 'synced');
  assert.equal(lw.items().length, 1);

  // A non-410 ERROR event: relist after backoff.
  await until(() => f.state.watchers.length === 1);
  const resynced = once(lw, 'synced');
  f.send('ERROR', { kind: 'Status', code: 500, message: 'internal error' });
  await resynced;

  const f2 = await fakeCollection(t);
  f2.state.listAnswer = {
    status: 403,
    message: 'things is forbidden: User "u" cannot list resource "things" in API group "" in the namespace "x"',
  };
  const lw2 = new ListWatch<Obj>(f2.client, f2.path, { backoffMs: 10 });
  const forbidden = once<KubesocksError>(lw2, 'forbidden');
  lw2.start();
  const e = await forbidden;
  assert.equal(e.code, 'FORBIDDEN');
  assert.match(e.message, /cannot list resource "things"/);
  assert.equal(lw2.forbidden, e);
  assert.equal(lw2.active, false);
  const before = f2.state.requests.length;
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(f2.state.requests.length, before, 'no retries after 403');
});

test('the first retry after a failure is immediate; repeated failures back off, doubling', async (t) => {
  const f = await fakeCollection(t);
  f.state.listAnswer = { status: 500, message: 'etcdserver: leader changed' };
  const lw = new ListWatch<Obj>(f.client, f.path, { backoffMs: 80, maxBackoffMs: 10_000 });
  t.after(() => lw.stop());
  const at: number[] = [];
  lw.on('error', () => at.push(performance.now()));
  lw.start();
  await until(() => at.length >= 4);
  const gaps = at.slice(1).map((v, i) => v - at[i]!);
  // Immediate, then 80 ms and 160 ms, each ±20 % jitter.
  assert.ok(gaps[0]! < 60, `first retry after ${gaps[0]} ms`);
  assert.ok(gaps[1]! >= 64, `second retry after ${gaps[1]} ms`);
  assert.ok(gaps[2]! >= 128, `third retry after ${gaps[2]} ms`);
});

/** A synced ListWatch of one object whose watch has been serving for over a second (errors ignored). */
async function longServedWatch(t: TestContext, opts: { backoffMs: number; maxBackoffMs: number }) {
  const f = await fakeCollection(t);
  f.put('a', 1);
  const lw = new ListWatch<Obj>(f.client, f.path, opts);
  t.after(() => lw.stop());
  lw.on('error', () => {});
  lw.start();
  await once(lw, 'synced');
  await until(() => f.state.watchers.length === 1);
  await new Promise((resolve) => setTimeout(resolve, 1_050));
  return f;
}

test('a watch that served for a while and then broke is re-watched at once, every time', async (t) => {
  const f = await longServedWatch(t, { backoffMs: 2_000, maxBackoffMs: 10_000 });
  for (let cut = 1; cut <= 3; cut++) {
    if (cut > 1) await new Promise((resolve) => setTimeout(resolve, 1_050)); // served for over a second
    const cutAt = performance.now();
    for (const w of f.state.watchers) w.destroy();
    await until(() => f.state.watchers.length === 1);
    const rewatchMs = performance.now() - cutAt;
    // Backing off would wait 2 s (and 4 s after the second cut).
    assert.ok(rewatchMs < 1_000, `cut ${cut}: re-watched after ${Math.round(rewatchMs)} ms`);
  }
});

test('a relist that keeps failing after a long-served watch backs off instead of spinning', async (t) => {
  const f = await longServedWatch(t, { backoffMs: 100, maxBackoffMs: 1_000 });
  f.state.listAnswer = { status: 500, message: 'etcdserver: request timed out' };
  const before = f.state.requests.length;
  f.send('ERROR', { kind: 'Status', code: 500, message: 'internal error' }); // relist, which now fails
  await new Promise((resolve) => setTimeout(resolve, 700));
  const lists = f.state.requests.slice(before).filter((r) => !r.includes('watch=1')).length;
  // At once, then after ~100, ~200 and ~400 ms: four at most, not hundreds.
  assert.ok(lists >= 2 && lists <= 5, `${lists} list requests in 700 ms`);
});

test('stop() ends the watch request and the retry loop', async (t) => {
  const f = await fakeCollection(t);
  f.put('a', 1);
  const lw = new ListWatch<Obj>(f.client, f.path);
  const synced = once(lw, 'synced');
  lw.start();
  await synced;
  await until(() => f.state.watchers.length === 1);
  const stopped = once(lw, 'stop');
  lw.stop();
  await stopped;
  await until(() => f.state.watchers.length === 0);
  assert.equal(lw.items().length, 1, 'items stay readable');
  lw.start();
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(f.state.watchers.length, 0, 'a stopped ListWatch does not start again');
});
