/**
 * The simulated API server over real HTTPS (verified against the cluster's
 * CA): authentication, discovery, GET/list/watch with selectors and
 * resourceVersions, Status shapes, derived EndpointSlices, RBAC denials, the
 * port-forward upgrade negotiation, the control endpoint and the lifecycle.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { SimCluster } from '../src/sim/cluster.js';
import { loadScenario, validateScenario, ScenarioError } from '../src/sim/scenario.js';
import type { Scenario } from '../src/sim/types.js';

// ---------------------------------------------------------------------------
// Helpers

/** Parsed API JSON: the tests read arbitrary object shapes and let assertions check them. */
type Json = any;

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: Json;
}

interface CallOptions {
  /** Bearer token; null sends none. Default: admin. */
  token?: string | null;
  method?: string;
  headers?: Record<string, string>;
}

function call(c: SimCluster, path: string, options: CallOptions = {}): Promise<Reply> {
  const token = options.token === undefined ? c.adminToken : options.token;
  const url = new URL(path, c.url);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: options.method ?? 'GET',
        ca: c.caPem,
        agent: false,
        headers: { Accept: 'application/json', ...(token !== null ? { Authorization: `Bearer ${token}` } : {}), ...options.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

type WatchEvent = { type: string; object: Json };

/** A watch response read line by line. */
class Watch {
  readonly events: WatchEvent[] = [];
  #waiters: Array<() => void> = [];
  /** 'end' when the server finished the response, 'abort' when the connection broke mid-stream. */
  readonly finished: Promise<'end' | 'abort'>;
  #close: () => void = () => {};
  #opened: Promise<number>;

  constructor(c: SimCluster, path: string, token: string = c.adminToken) {
    let finish: (how: 'end' | 'abort') => void = () => {};
    this.finished = new Promise((resolve) => (finish = resolve));
    this.#opened = new Promise((resolve, reject) => {
      const req = httpsRequest(new URL(path, c.url), { ca: c.caPem, agent: false, headers: { Authorization: `Bearer ${token}` } }, (res) => {
        resolve(res.statusCode ?? 0);
        let buffered = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffered += chunk;
          let nl: number;
          while ((nl = buffered.indexOf('\n')) !== -1) {
            this.events.push(JSON.parse(buffered.slice(0, nl)) as WatchEvent);
            buffered = buffered.slice(nl + 1);
          }
          this.#wake();
        });
        res.on('error', () => {});
        res.on('close', () => {
          finish(res.complete ? 'end' : 'abort');
          this.#wake();
        });
      });
      req.on('error', (err) => {
        reject(err);
        finish('abort');
      });
      req.end();
      this.#close = () => req.destroy();
    });
  }

  opened(): Promise<number> {
    return this.#opened;
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** Waits until `count` events arrived; returns them all. */
  async atLeast(count: number, timeoutMs = 3000): Promise<WatchEvent[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.events.length < count) {
      if (Date.now() > deadline) throw new Error(`expected ${count} events, got ${JSON.stringify(this.events.map((e) => e.type))}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.events;
  }

  /** Waits for an event matching `predicate`. */
  async find(predicate: (e: WatchEvent) => boolean, timeoutMs = 3000): Promise<WatchEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find(predicate);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching event among ${JSON.stringify(this.events.map((e) => `${e.type} ${e.object?.metadata?.name}`))}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  close(): void {
    this.#close();
  }
}

interface RawReply {
  status: number;
  statusLine: string;
  headers: Map<string, string[]>;
  body: string;
  socket: TLSSocket;
}

/** Sends a hand-written HTTP/1.1 request over TLS; returns the response head (and body unless 101). */
function raw(c: SimCluster, head: string[]): Promise<RawReply> {
  const { port } = new URL(c.url);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: Number(port), ca: c.caPem }, () => {
      socket.write(`${head.join('\r\n')}\r\n\r\n`);
    });
    socket.on('error', reject);
    let buffer = Buffer.alloc(0);
    let parsed: Omit<RawReply, 'body'> | undefined;
    let bodyStart = 0;
    const finish = () => {
      if (!parsed) return;
      const length = Number(parsed.headers.get('content-length')?.[0] ?? Number.NaN);
      const body = buffer.subarray(bodyStart);
      if (parsed.status === 101) resolve({ ...parsed, body: '' });
      else if (!Number.isNaN(length) && body.length >= length) resolve({ ...parsed, body: body.subarray(0, length).toString('utf8') });
    };
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!parsed) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end === -1) return;
        const lines = buffer.subarray(0, end).toString('latin1').split('\r\n');
        const statusLine = lines[0] ?? '';
        const headers = new Map<string, string[]>();
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':');
          const name = line.slice(0, colon).trim().toLowerCase();
          headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
        }
        parsed = { status: Number(statusLine.split(' ')[1]), statusLine, headers, socket };
        bodyStart = end + 4;
      }
      finish();
    });
    socket.on('end', () => {
      if (parsed) resolve({ ...parsed, body: buffer.subarray(bodyStart).toString('utf8') });
      else reject(new Error(`connection ended before a response: ${JSON.stringify(buffer.toString('latin1'))}`));
    });
  });
}

const PF = (ns: string, pod: string) => `/api/v1/namespaces/${ns}/pods/${pod}/portforward`;

function spdyUpgrade(c: SimCluster, path: string, options: { token?: string | null; extra?: string[]; omit?: string[]; method?: string } = {}): Promise<RawReply> {
  const token = options.token === undefined ? c.adminToken : options.token;
  const omit = new Set((options.omit ?? []).map((h) => h.toLowerCase()));
  const headers = [
    `Host: ${new URL(c.url).host}`,
    ...(token !== null ? [`Authorization: Bearer ${token}`] : []),
    'Connection: Upgrade',
    'Upgrade: SPDY/3.1',
    'X-Stream-Protocol-Version: portforward.k8s.io',
    'Content-Length: 0',
  ].filter((h) => !omit.has(h.slice(0, h.indexOf(':')).toLowerCase()));
  return raw(c, [`${options.method ?? 'POST'} ${path} HTTP/1.1`, ...headers, ...(options.extra ?? [])]);
}

const STATUS_401 = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 };

function names(list: Json): string[] {
  return list.items.map((i: Json) => i.metadata.name);
}

// ---------------------------------------------------------------------------

describe('the demo cluster, read-only', () => {
  let c: SimCluster;
  before(async () => {
    c = await SimCluster.start();
  });
  after(() => c.close());

  test('listens on https://127.0.0.1 with a certificate the CA verifies', () => {
    assert.match(c.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(c.caPem, /^-----BEGIN CERTIFICATE-----\n/);
  });

  test('no token, an unknown token → 401 with the exact Status', async () => {
    for (const token of [null, 'not-a-token']) {
      for (const path of ['/api/v1/namespaces/demo/pods', '/version', '/api']) {
        const r = await call(c, path, { token });
        assert.equal(r.status, 401, `${path} with ${token}`);
        assert.match(String(r.headers['content-type']), /^application\/json/);
        assert.deepEqual(r.json, STATUS_401);
        assert.equal(r.text, JSON.stringify(STATUS_401));
      }
    }
  });

  test('discovery documents', async () => {
    const version = (await call(c, '/version')).json;
    assert.equal(version.major, '1');
    assert.match(version.gitVersion, /^v1\.\d+\./);

    const api = await call(c, '/api');
    assert.equal(api.json.kind, 'APIVersions');
    assert.deepEqual(api.json.versions, ['v1']);
    assert.equal(api.headers['content-type'], 'application/json');

    const v1 = (await call(c, '/api/v1')).json;
    assert.equal(v1.kind, 'APIResourceList');
    const byName = new Map<string, Json>(v1.resources.map((r: Json) => [r.name, r]));
    assert.equal(byName.get('pods')?.kind, 'Pod');
    assert.equal(byName.get('pods')?.namespaced, true);
    assert.deepEqual(byName.get('pods')?.shortNames, ['po']);
    assert.deepEqual(byName.get('services')?.shortNames, ['svc']);
    assert.equal(byName.get('namespaces')?.namespaced, false);
    assert.deepEqual(byName.get('pods/portforward')?.verbs, ['create', 'get']);

    assert.deepEqual(byName.get('endpoints')?.shortNames, ['ep']);
    assert.equal(byName.get('endpoints')?.kind, 'Endpoints');

    const apis = (await call(c, '/apis')).json;
    assert.equal(apis.kind, 'APIGroupList');
    assert.deepEqual(apis.groups.map((g: Json) => g.name), ['apps', 'discovery.k8s.io'], 'in the real server\'s order');
    assert.ok(apis.groups.some((g: Json) => g.name === 'discovery.k8s.io' && g.preferredVersion.groupVersion === 'discovery.k8s.io/v1'));
    assert.equal((await call(c, '/apis/discovery.k8s.io')).json.kind, 'APIGroup');
    const group = (await call(c, '/apis/discovery.k8s.io/v1')).json;
    assert.deepEqual(
      group.resources.map((r: Json) => [r.name, r.kind]),
      [['endpointslices', 'EndpointSlice']],
    );
    const apps = (await call(c, '/apis/apps')).json;
    assert.deepEqual([apps.kind, apps.name, apps.preferredVersion], ['APIGroup', 'apps', { groupVersion: 'apps/v1', version: 'v1' }]);
    const appsV1 = (await call(c, '/apis/apps/v1')).json;
    assert.equal(appsV1.groupVersion, 'apps/v1');
    assert.deepEqual(
      appsV1.resources.map((r: Json) => [r.name, r.kind, r.shortNames, r.namespaced, r.verbs]),
      [
        ['deployments', 'Deployment', ['deploy'], true, ['get', 'list', 'watch']],
        ['replicasets', 'ReplicaSet', ['rs'], true, ['get', 'list', 'watch']],
        ['statefulsets', 'StatefulSet', ['sts'], true, ['get', 'list', 'watch']],
      ],
    );

    // Aggregated discovery is answered with plain JSON: kubectl falls back.
    const aggregated = await call(c, '/api', { headers: { Accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json' } });
    assert.equal(aggregated.headers['content-type'], 'application/json');
    assert.equal(aggregated.json.kind, 'APIVersions');

    for (const path of ['/openapi/v2', '/openapi/v3', '/apis/apps/v2', '/apis/apps/v1/namespaces/demo/daemonsets', '/api/v1/namespaces/demo/deployments', '/nope']) {
      const r = await call(c, path);
      assert.equal(r.status, 404, path);
      assert.equal(r.json.reason, 'NotFound');
      assert.equal(r.json.message, 'the server could not find the requested resource');
    }
  });

  test('lists carry kind, resourceVersion and sorted items without kind', async () => {
    const list = (await call(c, '/api/v1/namespaces/demo/pods?limit=500&timeout=32s')).json;
    assert.equal(list.kind, 'PodList');
    assert.equal(list.apiVersion, 'v1');
    assert.match(list.metadata.resourceVersion, /^\d+$/);
    assert.deepEqual(names(list), ['db-0', 'db-1', 'echo-0', 'echo-1', 'lonely', 'web-0', 'web-1', 'web-2', 'web-3']);
    assert.equal(list.items[0].kind, undefined);

    const all = (await call(c, '/api/v1/pods')).json;
    assert.ok(all.items.some((p: Json) => p.metadata.namespace === 'other' && p.metadata.name === 'api-0'));
    assert.equal(all.items.length, 10);

    const svcs = (await call(c, '/api/v1/services')).json;
    assert.equal(svcs.kind, 'ServiceList');
    assert.deepEqual(names(svcs), ['db', 'docs', 'echo', 'web', 'api']);

    const slices = (await call(c, '/apis/discovery.k8s.io/v1/endpointslices')).json;
    assert.equal(slices.kind, 'EndpointSliceList');
    assert.equal(slices.apiVersion, 'discovery.k8s.io/v1');

    // An unknown namespace lists nothing, like a real server.
    assert.deepEqual((await call(c, '/api/v1/namespaces/nowhere/pods')).json.items, []);
  });

  test('pods look like real ones', async () => {
    const pod = (await call(c, '/api/v1/namespaces/demo/pods/web-0')).json;
    assert.equal(pod.kind, 'Pod');
    assert.equal(pod.apiVersion, 'v1');
    assert.match(pod.metadata.uid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.match(pod.metadata.resourceVersion, /^\d+$/);
    assert.match(pod.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual(pod.metadata.labels, { app: 'web' });
    assert.equal(pod.spec.nodeName, 'sim-node-1');
    assert.deepEqual(pod.spec.containers[0].ports, [
      { name: 'http', containerPort: 8080, protocol: 'TCP' },
      { name: 'metrics', containerPort: 9090, protocol: 'TCP' },
    ]);
    assert.equal(pod.status.phase, 'Running');
    assert.equal(pod.status.podIP, '10.244.0.10');
    assert.deepEqual(pod.status.podIPs, [{ ip: '10.244.0.10' }]);
    const ready = pod.status.conditions.find((cond: Json) => cond.type === 'Ready');
    assert.equal(ready.status, 'True');
    assert.equal(pod.status.containerStatuses[0].ready, true);
    assert.equal(pod.status.containerStatuses[0].restartCount, 0);
    assert.equal(pod.status.containerStatuses[0].started, true);
    assert.equal(pod.metadata.deletionTimestamp, undefined);

    const notReady = (await call(c, '/api/v1/namespaces/demo/pods/web-3')).json;
    assert.equal(notReady.status.conditions.find((cond: Json) => cond.type === 'Ready').status, 'False');
    assert.equal(notReady.status.containerStatuses[0].ready, false);

    const db0 = (await call(c, '/api/v1/namespaces/demo/pods/db-0')).json;
    assert.equal(db0.spec.hostname, 'db-0');
    assert.equal(db0.spec.subdomain, 'db');
  });

  test('services: cluster IPs, headless, ExternalName, named target ports', async () => {
    const web = (await call(c, '/api/v1/namespaces/demo/services/web')).json;
    assert.equal(web.kind, 'Service');
    assert.equal(web.spec.type, 'ClusterIP');
    assert.equal(web.spec.clusterIP, '10.96.100.10');
    assert.deepEqual(web.spec.clusterIPs, ['10.96.100.10']);
    assert.deepEqual(web.spec.ports, [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 'http' }]);
    assert.deepEqual(web.spec.selector, { app: 'web' });

    const db = (await call(c, '/api/v1/namespaces/demo/services/db')).json;
    assert.equal(db.spec.clusterIP, 'None');

    const docs = (await call(c, '/api/v1/namespaces/demo/services/docs')).json;
    assert.equal(docs.spec.type, 'ExternalName');
    assert.equal(docs.spec.externalName, 'example.com');
    assert.equal(docs.spec.clusterIP, undefined);
    assert.equal(docs.spec.selector, undefined);

    const api = (await call(c, '/api/v1/namespaces/other/services/api')).json;
    assert.equal(api.spec.ports[0].targetPort, 8080);
  });

  test('namespaces: the scenario\'s plus default and kube-system, Active', async () => {
    const list = (await call(c, '/api/v1/namespaces')).json;
    assert.equal(list.kind, 'NamespaceList');
    assert.deepEqual(names(list), ['default', 'demo', 'kube-system', 'other']);
    const demo = (await call(c, '/api/v1/namespaces/demo')).json;
    assert.equal(demo.kind, 'Namespace');
    assert.equal(demo.status.phase, 'Active');
    const missing = await call(c, '/api/v1/namespaces/nope');
    assert.equal(missing.status, 404);
    assert.equal(missing.json.message, 'namespaces "nope" not found');
  });

  test('404s name the resource (group-qualified outside the core group)', async () => {
    const pod = await call(c, '/api/v1/namespaces/demo/pods/x');
    assert.equal(pod.status, 404);
    assert.deepEqual(pod.json, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'pods "x" not found',
      reason: 'NotFound',
      details: { name: 'x', kind: 'pods' },
      code: 404,
    });
    const slice = await call(c, '/apis/discovery.k8s.io/v1/namespaces/demo/endpointslices/x');
    assert.equal(slice.json.message, 'endpointslices.discovery.k8s.io "x" not found');
    assert.deepEqual(slice.json.details, { name: 'x', group: 'discovery.k8s.io', kind: 'endpointslices' });
    assert.equal((await call(c, '/api/v1/namespaces/demo/services/x')).json.message, 'services "x" not found');
  });

  test('label selectors', async () => {
    const sel = async (s: string) => names((await call(c, `/api/v1/namespaces/demo/pods?labelSelector=${encodeURIComponent(s)}`)).json);
    assert.deepEqual(await sel('app=web'), ['web-0', 'web-1', 'web-2', 'web-3']);
    assert.deepEqual(await sel('app==echo'), ['echo-0', 'echo-1']);
    assert.deepEqual(await sel('app in (echo, db)'), ['db-0', 'db-1', 'echo-0', 'echo-1']);
    assert.deepEqual(await sel('app notin (web,echo,db)'), ['lonely']);
    assert.deepEqual(await sel('app!=web,app!=echo'), ['db-0', 'db-1', 'lonely']);
    assert.deepEqual(await sel('app'), ['db-0', 'db-1', 'echo-0', 'echo-1', 'lonely', 'web-0', 'web-1', 'web-2', 'web-3']);
    assert.deepEqual(await sel('!app'), []);
    assert.deepEqual(await sel('app=web,tier=db'), []);
    assert.deepEqual(await sel(''), await sel('app'));
    const bad = await call(c, `/api/v1/namespaces/demo/pods?labelSelector=${encodeURIComponent('app in web')}`);
    assert.equal(bad.status, 400);
    assert.equal(bad.json.reason, 'BadRequest');
    assert.match(bad.json.message, /^unable to parse requirement/);
  });

  test('field selectors', async () => {
    const sel = async (s: string, path = '/api/v1/namespaces/demo/pods') => names((await call(c, `${path}?fieldSelector=${encodeURIComponent(s)}`)).json);
    assert.deepEqual(await sel('metadata.name=web-1'), ['web-1']);
    assert.deepEqual(await sel('metadata.name==web-1'), ['web-1']);
    assert.deepEqual(await sel('metadata.name=api-0,metadata.namespace=other', '/api/v1/pods'), ['api-0']);
    assert.deepEqual(await sel('metadata.name=nothing'), []);
    assert.equal((await sel('metadata.name!=web-1')).length, 8);
    assert.equal((await sel('status.phase=Running')).length, 9);
    assert.deepEqual(await sel('metadata.name=demo', '/api/v1/namespaces'), ['demo']);
    const bad = await call(c, '/api/v1/namespaces/demo/pods?fieldSelector=spec.nope%3Dx');
    assert.equal(bad.status, 400);
    assert.equal(bad.json.message, 'field label not supported: spec.nope');
  });

  test('EndpointSlices derived from services and pods', async () => {
    const list = (await call(c, '/apis/discovery.k8s.io/v1/namespaces/demo/endpointslices')).json;
    const bySvc = (svc: string) => list.items.filter((s: Json) => s.metadata.labels['kubernetes.io/service-name'] === svc);
    assert.equal(bySvc('docs').length, 0, 'no slices for an ExternalName service');

    const [web, ...moreWeb] = bySvc('web');
    assert.equal(moreWeb.length, 0);
    assert.match(web.metadata.name, /^web-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    assert.equal(web.metadata.generateName, 'web-');
    assert.equal(web.metadata.labels['endpointslice.kubernetes.io/managed-by'], 'endpointslice-controller.k8s.io');
    assert.equal(web.metadata.ownerReferences[0].kind, 'Service');
    assert.equal(web.addressType, 'IPv4');
    assert.deepEqual(web.ports, [{ name: 'http', protocol: 'TCP', port: 8080 }]);
    const ep = (name: string) => web.endpoints.find((e: Json) => e.targetRef.name === name);
    assert.deepEqual(ep('web-0').addresses, ['10.244.0.10']);
    assert.deepEqual(ep('web-0').conditions, { ready: true, serving: true, terminating: false });
    assert.deepEqual(ep('web-3').conditions, { ready: false, serving: false, terminating: false });
    assert.equal(ep('web-0').nodeName, 'sim-node-1');
    const pod = (await call(c, '/api/v1/namespaces/demo/pods/web-0')).json;
    assert.deepEqual(ep('web-0').targetRef, { kind: 'Pod', namespace: 'demo', name: 'web-0', uid: pod.metadata.uid });
    assert.equal(ep('web-0').hostname, undefined);

    const [db] = bySvc('db');
    assert.equal(db.metadata.labels['service.kubernetes.io/headless'], '');
    assert.deepEqual(db.endpoints.map((e: Json) => e.hostname), ['db-0', 'db-1']);
    assert.deepEqual(db.ports, [{ name: 'postgres', protocol: 'TCP', port: 5432 }]);

    const [echo] = bySvc('echo');
    assert.deepEqual(echo.ports, [{ name: 'echo', protocol: 'TCP', port: 7 }]);

    const byLabel = (await call(c, `/apis/discovery.k8s.io/v1/namespaces/demo/endpointslices?labelSelector=${encodeURIComponent('kubernetes.io/service-name=web')}`)).json;
    assert.deepEqual(names(byLabel), [web.metadata.name]);
    const single = (await call(c, `/apis/discovery.k8s.io/v1/namespaces/demo/endpointslices/${web.metadata.name}`)).json;
    assert.equal(single.kind, 'EndpointSlice');
    assert.equal(single.apiVersion, 'discovery.k8s.io/v1');
  });

  test('server-side Tables for kubectl get', async () => {
    const table = await call(c, '/api/v1/namespaces/demo/pods', { headers: { Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json' } });
    assert.equal(table.json.kind, 'Table');
    assert.equal(table.json.apiVersion, 'meta.k8s.io/v1');
    assert.deepEqual(table.json.columnDefinitions.map((col: Json) => col.name), ['Name', 'Ready', 'Status', 'Restarts', 'Age', 'IP', 'Node', 'Nominated Node', 'Readiness Gates']);
    const row = table.json.rows.find((r: Json) => r.cells[0] === 'web-3');
    assert.deepEqual(row.cells.slice(0, 4), ['web-3', '0/1', 'Running', '0']);
    assert.equal(row.object.kind, 'PartialObjectMetadata');
    assert.equal(row.object.metadata.namespace, 'demo');
  });
});

describe('mutations and watches', () => {
  let c: SimCluster;
  before(async () => {
    c = await SimCluster.start();
  });
  after(() => c.close());

  test('a watch from a list\'s resourceVersion sees later changes, in order', async () => {
    const list = (await call(c, '/api/v1/namespaces/demo/pods')).json;
    const rv = Number(list.metadata.resourceVersion);
    const w = new Watch(c, `/api/v1/namespaces/demo/pods?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true`);
    assert.equal(await w.opened(), 200);

    c.setPodReady('demo', 'web-3', true);
    c.addPod({ name: 'web-9', namespace: 'demo', labels: { app: 'web' }, ports: [{ name: 'http', containerPort: 8080 }] });
    c.deletePod('demo', 'web-9');
    const events = await w.atLeast(3);
    assert.deepEqual(
      events.map((e) => [e.type, e.object.metadata.name]),
      [
        ['MODIFIED', 'web-3'],
        ['ADDED', 'web-9'],
        ['DELETED', 'web-9'],
      ],
    );
    assert.equal(events[0]?.object.kind, 'Pod');
    const rvs = events.map((e) => Number(e.object.metadata.resourceVersion));
    assert.ok(rvs.every((v, i) => v > rv && (i === 0 || v > (rvs[i - 1] ?? 0))), `increasing: ${rvs}`);
    // An allocated pod IP for a pod without one in the scenario.
    assert.match(events[1]?.object.status.podIP, /^10\.244\.\d+\.\d+$/);
    w.close();
    c.setPodReady('demo', 'web-3', false);
  });

  test('resourceVersion 0 or absent: ADDED for the current state first', async () => {
    for (const rv of ['&resourceVersion=0', '']) {
      const w = new Watch(c, `/api/v1/namespaces/other/pods?watch=true${rv}`);
      const [first] = await w.atLeast(1);
      assert.equal(first?.type, 'ADDED');
      assert.equal(first?.object.metadata.name, 'api-0');
      w.close();
    }
  });

  test('selectors filter watches; leaving the selection is a DELETED', async () => {
    const w = new Watch(c, `/api/v1/namespaces/demo/pods?watch=1&labelSelector=${encodeURIComponent('app=echo')}`);
    await w.atLeast(2);
    c.replacePod({ name: 'echo-1', namespace: 'demo', labels: { app: 'echo-old' }, ip: '10.244.0.21', ports: [{ name: 'echo', containerPort: 7, backend: 'echo' }] });
    c.setPodReady('demo', 'web-0', false);
    c.replacePod({ name: 'echo-1', namespace: 'demo', labels: { app: 'echo' }, ip: '10.244.0.21', ports: [{ name: 'echo', containerPort: 7, backend: 'echo' }] });
    const events = await w.atLeast(4);
    assert.deepEqual(
      events.slice(2).map((e) => [e.type, e.object.metadata.name]),
      [
        ['DELETED', 'echo-1'],
        ['ADDED', 'echo-1'],
      ],
    );
    c.setPodReady('demo', 'web-0', true);
    const named = new Watch(c, `/api/v1/namespaces/demo/pods?watch=1&fieldSelector=${encodeURIComponent('metadata.name=web-2')}`);
    await named.atLeast(1);
    c.setPodReady('demo', 'web-1', false);
    c.setPodReady('demo', 'web-2', false);
    const [, modified] = await named.atLeast(2);
    assert.deepEqual([modified?.type, modified?.object.metadata.name], ['MODIFIED', 'web-2']);
    c.setPodReady('demo', 'web-1', true);
    c.setPodReady('demo', 'web-2', true);
    w.close();
    named.close();
  });

  test('an update that changes nothing is no event', async () => {
    const before = (await call(c, '/api/v1/namespaces/demo/pods/web-0')).json.metadata.resourceVersion;
    c.setPodReady('demo', 'web-0', true);
    const afterRv = (await call(c, '/api/v1/namespaces/demo/pods/web-0')).json.metadata.resourceVersion;
    assert.equal(afterRv, before);
  });

  test('slices follow readiness, termination and deletion, with MODIFIED events', async () => {
    const w = new Watch(c, `/apis/discovery.k8s.io/v1/namespaces/demo/endpointslices?watch=1&labelSelector=${encodeURIComponent('kubernetes.io/service-name=web')}`);
    const [initial] = await w.atLeast(1);
    const conditions = (e: WatchEvent | undefined, pod: string) => e?.object.endpoints?.find((x: Json) => x.targetRef.name === pod)?.conditions;
    assert.deepEqual(conditions(initial, 'web-1'), { ready: true, serving: true, terminating: false });

    c.setPodTerminating('demo', 'web-1', true);
    const [, terminating] = await w.atLeast(2);
    assert.equal(terminating?.type, 'MODIFIED');
    assert.equal(terminating?.object.metadata.name, initial?.object.metadata.name, 'the slice keeps its name');
    assert.deepEqual(conditions(terminating, 'web-1'), { ready: false, serving: true, terminating: true });
    const pod = (await call(c, '/api/v1/namespaces/demo/pods/web-1')).json;
    assert.match(pod.metadata.deletionTimestamp, /Z$/);

    c.setPodReady('demo', 'web-1', false);
    const [, , notServing] = await w.atLeast(3);
    assert.deepEqual(conditions(notServing, 'web-1'), { ready: false, serving: false, terminating: true });

    c.deletePod('demo', 'web-1');
    const [, , , gone] = await w.atLeast(4);
    assert.equal(gone?.object.endpoints.some((x: Json) => x.targetRef.name === 'web-1'), false);

    c.deleteService('demo', 'web');
    const deleted = await w.find((e) => e.type === 'DELETED');
    assert.equal(deleted.object.metadata.name, initial?.object.metadata.name);
    w.close();
  });

  test('services added at run time get a cluster IP and slices; removing the selector removes them', async () => {
    const w = new Watch(c, '/apis/discovery.k8s.io/v1/namespaces/fresh/endpointslices?watch=1');
    await w.opened();
    c.addService({ name: 'late', namespace: 'fresh', selector: { app: 'late' }, ports: [{ port: 81, targetPort: 8081 }] });
    const svc = (await call(c, '/api/v1/namespaces/fresh/services/late')).json;
    assert.match(svc.spec.clusterIP, /^10\.96\.\d+\.\d+$/);
    assert.deepEqual(svc.spec.ports, [{ protocol: 'TCP', port: 81, targetPort: 8081 }]);
    // The namespace appeared with the service.
    assert.equal((await call(c, '/api/v1/namespaces/fresh')).status, 200);
    const placeholder = await w.find((e) => e.type === 'ADDED');
    assert.equal(placeholder.object.endpoints, null, 'a service selecting no pods keeps an empty placeholder slice');
    assert.equal(placeholder.object.ports, null);

    c.addPod({ name: 'late-0', namespace: 'fresh', labels: { app: 'late' }, ip: '10.244.9.9' });
    const filled = await w.find((e) => e.type === 'MODIFIED');
    assert.deepEqual(filled.object.ports, [{ name: '', protocol: 'TCP', port: 8081 }]);
    assert.deepEqual(filled.object.endpoints[0].addresses, ['10.244.9.9']);

    c.addService({ name: 'late', namespace: 'fresh', ports: [{ port: 81, targetPort: 8081 }] });
    await w.find((e) => e.type === 'DELETED');
    const again = (await call(c, '/api/v1/namespaces/fresh/services/late')).json;
    assert.equal(again.spec.clusterIP, svc.spec.clusterIP, 'a replaced service keeps its cluster IP');
    assert.equal(again.metadata.uid, svc.metadata.uid);
    w.close();
  });

  test('namespace and service watches see their changes', async () => {
    const ns = new Watch(c, `/api/v1/namespaces?watch=1&resourceVersion=${(await call(c, '/api/v1/namespaces')).json.metadata.resourceVersion}`);
    const svc = new Watch(c, `/api/v1/services?watch=1&resourceVersion=${(await call(c, '/api/v1/services')).json.metadata.resourceVersion}`);
    await Promise.all([ns.opened(), svc.opened()]);
    c.addService({ name: 'x', namespace: 'brand-new', clusterIP: 'None', selector: { a: 'b' } });
    assert.equal((await ns.find((e) => e.type === 'ADDED')).object.metadata.name, 'brand-new');
    assert.equal((await svc.find((e) => e.type === 'ADDED')).object.metadata.name, 'x');
    c.deleteService('brand-new', 'x');
    assert.equal((await svc.find((e) => e.type === 'DELETED')).object.metadata.name, 'x');
    ns.close();
    svc.close();
  });

  test('mutations of missing objects throw NotFound / AlreadyExists Status errors', () => {
    assert.throws(() => c.deletePod('demo', 'nope'), { message: 'pods "nope" not found' });
    assert.throws(() => c.setPodReady('demo', 'nope', true), { message: 'pods "nope" not found' });
    assert.throws(() => c.deleteService('demo', 'nope'), { message: 'services "nope" not found' });
    assert.throws(() => c.addPod({ name: 'lonely', namespace: 'demo' }), { message: 'pods "lonely" already exists' });
    assert.throws(() => c.addPod({ name: 'Bad_Name', namespace: 'demo' }), ScenarioError);
  });

  test('compactHistory: an old resourceVersion gets a 410 Expired ERROR event, a list still answers', async () => {
    const rv = Number((await call(c, '/api/v1/namespaces/demo/pods')).json.metadata.resourceVersion);
    c.setPodReady('demo', 'web-2', false);
    c.compactHistory();
    const w = new Watch(c, `/api/v1/namespaces/demo/pods?watch=1&resourceVersion=${rv}`);
    assert.equal(await w.opened(), 200);
    const [event] = await w.atLeast(1);
    assert.equal(await w.finished, 'end');
    const current = Number((await call(c, `/api/v1/namespaces/demo/pods?resourceVersion=${rv}`)).json.metadata.resourceVersion);
    assert.deepEqual(event, {
      type: 'ERROR',
      object: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `too old resource version: ${rv} (${current})`,
        reason: 'Expired',
        code: 410,
      },
    });
    // From the current resourceVersion a watch works again.
    const fresh = new Watch(c, `/api/v1/namespaces/demo/pods?watch=1&resourceVersion=${current}`);
    c.setPodReady('demo', 'web-2', true);
    assert.equal((await fresh.atLeast(1))[0]?.type, 'MODIFIED');
    fresh.close();
  });

  test('timeoutSeconds ends the watch cleanly; cutWatches ends it abruptly', async () => {
    const timed = new Watch(c, '/api/v1/namespaces/demo/pods?watch=1&timeoutSeconds=1&resourceVersion=0');
    const started = Date.now();
    assert.equal(await timed.finished, 'end');
    assert.ok(Date.now() - started >= 900);

    const cut = new Watch(c, '/api/v1/namespaces/demo/pods?watch=1');
    await cut.atLeast(1);
    c.cutWatches();
    assert.equal(await cut.finished, 'abort');
  });

  test('sendInitialEvents streams the state and a bookmark', async () => {
    const w = new Watch(c, '/api/v1/namespaces/other/pods?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true');
    const [added, bookmark] = await w.atLeast(2);
    assert.equal(added?.type, 'ADDED');
    assert.equal(bookmark?.type, 'BOOKMARK');
    assert.equal(bookmark?.object.metadata.annotations['k8s.io/initial-events-end'], 'true');
    w.close();
  });

  test('watch errors: bad resourceVersion is 400', async () => {
    const r = await call(c, '/api/v1/namespaces/demo/pods?watch=1&resourceVersion=abc');
    assert.equal(r.status, 400);
    assert.equal(r.json.reason, 'BadRequest');
  });
});

describe('EndpointSlices for named ports that differ between pods', () => {
  let c: SimCluster;
  before(async () => {
    c = await SimCluster.start({
      scenario: {
        pods: [
          { name: 'a', namespace: 'ns', labels: { app: 'x' }, ip: '10.1.0.1', ports: [{ name: 'http', containerPort: 8080 }] },
          { name: 'b', namespace: 'ns', labels: { app: 'x' }, ip: '10.1.0.2', ports: [{ name: 'http', containerPort: 9090 }] },
          { name: 'c', namespace: 'ns', labels: { app: 'x' }, ip: '10.1.0.3', ports: [{ name: 'other', containerPort: 7000 }] },
          { name: 'd', namespace: 'ns', labels: { app: 'x' }, ip: '10.1.0.4', ports: [{ name: 'http', containerPort: 8080 }], phase: 'Succeeded' },
          { name: 'e', namespace: 'ns', labels: { app: 'x' }, phase: 'Pending', ports: [{ name: 'http', containerPort: 8080 }] },
          { name: 'h', namespace: 'ns', labels: { app: 'x' }, ip: '10.1.0.8', hostname: 'h', subdomain: 'other-svc', ports: [{ name: 'http', containerPort: 8080 }] },
        ],
        services: [{ name: 'x', namespace: 'ns', selector: { app: 'x' }, ports: [{ name: 'web', port: 80, targetPort: 'http' }] }],
      },
    });
  });
  after(() => c.close());

  test('one slice per distinct port set; a pod lacking the port gets none; completed or IP-less pods are left out', async () => {
    const list = (await call(c, '/apis/discovery.k8s.io/v1/namespaces/ns/endpointslices')).json;
    const summary = list.items.map((s: Json) => ({ ports: s.ports, pods: (s.endpoints ?? []).map((e: Json) => e.targetRef.name) }));
    summary.sort((p: Json, q: Json) => (p.pods[0] < q.pods[0] ? -1 : 1));
    assert.deepEqual(summary, [
      { ports: [{ name: 'web', protocol: 'TCP', port: 8080 }], pods: ['a', 'h'] },
      { ports: [{ name: 'web', protocol: 'TCP', port: 9090 }], pods: ['b'] },
      { ports: null, pods: ['c'] },
    ]);
    const h = list.items.flatMap((s: Json) => s.endpoints ?? []).find((e: Json) => e.targetRef.name === 'h');
    assert.equal(h.hostname, undefined, 'hostname only when the subdomain names the service');
  });

  test('pods without a node or sandbox have no IP; phase changes allocate one', async () => {
    const e = (await call(c, '/api/v1/namespaces/ns/pods/e')).json;
    assert.equal(e.status.podIP, undefined);
    assert.equal(e.status.containerStatuses[0].state.waiting.reason, 'ContainerCreating');
    c.setPodPhase('ns', 'e', 'Running');
    const running = (await call(c, '/api/v1/namespaces/ns/pods/e')).json;
    assert.match(running.status.podIP, /^10\.244\./);
  });
});

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

describe('v1 Endpoints', () => {
  let c: SimCluster;
  before(async () => {
    c = await SimCluster.start();
  });
  after(() => c.close());

  const addr = (a: Json) => [a.ip, a.targetRef?.name, a.hostname ?? null];

  test('derived per service: ready and not-ready addresses, target refs, resolved named ports', async () => {
    const web = (await call(c, '/api/v1/namespaces/demo/endpoints/web')).json;
    assert.equal(web.kind, 'Endpoints');
    assert.equal(web.apiVersion, 'v1');
    assert.equal(web.metadata.name, 'web');
    assert.match(web.metadata.uid, /^[0-9a-f-]{36}$/);
    assert.equal(web.metadata.labels, undefined);
    assert.equal(web.subsets.length, 1);
    const [subset] = web.subsets;
    assert.deepEqual(subset.addresses.map(addr), [
      ['10.244.0.10', 'web-0', null],
      ['10.244.0.11', 'web-1', null],
      ['10.244.0.12', 'web-2', null],
    ]);
    assert.deepEqual(subset.notReadyAddresses.map(addr), [['10.244.0.13', 'web-3', null]]);
    assert.deepEqual(subset.ports, [{ name: 'http', port: 8080, protocol: 'TCP' }], 'the named targetPort resolved');
    const pod = (await call(c, '/api/v1/namespaces/demo/pods/web-0')).json;
    assert.deepEqual(subset.addresses[0], {
      ip: '10.244.0.10',
      nodeName: 'sim-node-1',
      targetRef: { kind: 'Pod', namespace: 'demo', name: 'web-0', uid: pod.metadata.uid },
    });

    const db = (await call(c, '/api/v1/namespaces/demo/endpoints/db')).json;
    assert.deepEqual(db.metadata.labels, { 'service.kubernetes.io/headless': '' });
    assert.deepEqual(db.subsets[0].addresses.map(addr), [
      ['10.244.0.30', 'db-0', 'db-0'],
      ['10.244.0.31', 'db-1', 'db-1'],
    ]);
    assert.deepEqual(db.subsets[0].ports, [{ name: 'postgres', port: 5432, protocol: 'TCP' }]);

    const docs = await call(c, '/api/v1/namespaces/demo/endpoints/docs');
    assert.equal(docs.status, 404, 'an ExternalName service has none');
    assert.equal(docs.json.message, 'endpoints "docs" not found');

    const list = (await call(c, '/api/v1/namespaces/demo/endpoints')).json;
    assert.equal(list.kind, 'EndpointsList');
    assert.deepEqual(names(list), ['db', 'echo', 'web']);
    const all = (await call(c, '/api/v1/endpoints')).json;
    assert.deepEqual(all.items.map((e: Json) => `${e.metadata.namespace}/${e.metadata.name}`), ['demo/db', 'demo/echo', 'demo/web', 'other/api']);
  });

  test('a watch follows readiness, termination and deletion; a service selecting nothing has no subsets', async () => {
    const w = new Watch(c, `/api/v1/namespaces/demo/endpoints?watch=1&fieldSelector=${encodeURIComponent('metadata.name=echo')}`);
    const [initial] = await w.atLeast(1);
    assert.deepEqual(initial?.object.subsets[0].addresses.map(addr), [
      ['10.244.0.20', 'echo-0', null],
      ['10.244.0.21', 'echo-1', null],
    ]);
    c.setPodReady('demo', 'echo-1', false);
    const notReady = await w.find((e) => e.type === 'MODIFIED');
    assert.deepEqual(notReady.object.subsets[0].notReadyAddresses.map(addr), [['10.244.0.21', 'echo-1', null]]);
    assert.equal(notReady.object.metadata.uid, initial?.object.metadata.uid);

    // A terminating pod leaves Endpoints at once (it stays in the slice, terminating).
    c.setPodTerminating('demo', 'echo-0', true);
    const terminating = await w.find((e) => e.type === 'MODIFIED' && e.object.subsets[0].addresses === undefined);
    assert.equal(terminating.object.subsets.length, 1);
    c.setPodTerminating('demo', 'echo-0', false);
    c.setPodReady('demo', 'echo-1', true);

    c.addService({ name: 'nothing', namespace: 'demo', selector: { app: 'none' }, ports: [{ port: 80 }] });
    const nothing = (await call(c, '/api/v1/namespaces/demo/endpoints/nothing')).json;
    assert.equal(nothing.subsets, undefined);
    c.deleteService('demo', 'nothing');
    assert.equal((await call(c, '/api/v1/namespaces/demo/endpoints/nothing')).status, 404);

    c.deleteService('demo', 'echo');
    assert.equal((await w.find((e) => e.type === 'DELETED')).object.metadata.name, 'echo');
    w.close();
  });

  test('the user nowatch may get endpoints (not list them); Tables print IP:PORT', async () => {
    const token = c.tokenFor('nowatch');
    const got = await call(c, '/api/v1/namespaces/demo/endpoints/web', { token });
    assert.equal(got.status, 200);
    const list = await call(c, '/api/v1/namespaces/demo/endpoints', { token });
    assert.equal(list.json.message, 'endpoints is forbidden: User "nowatch" cannot list resource "endpoints" in API group "" in the namespace "demo"');

    const table = (await call(c, '/api/v1/namespaces/demo/endpoints/web', { headers: { Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' } })).json;
    assert.deepEqual(table.columnDefinitions.map((x: Json) => x.name), ['Name', 'Endpoints', 'Age']);
    assert.deepEqual(table.rows[0].cells.slice(0, 2), ['web', '10.244.0.10:8080,10.244.0.11:8080,10.244.0.12:8080']);
  });
});

describe('v1 Endpoints: ports that differ between pods, truncation past 1000 addresses', () => {
  let c: SimCluster;
  before(async () => {
    const many = Array.from({ length: 1005 }, (_, i) => ({
      name: `m-${i}`,
      namespace: 'big',
      labels: { app: 'many' },
      ip: `10.250.${Math.floor(i / 250)}.${i % 250}`,
      ready: i < 990,
      ports: [{ name: 'http', containerPort: 8080 }],
    }));
    c = await SimCluster.start({
      scenario: {
        pods: [
          { name: 'a', namespace: 'ns', labels: { app: 'x' }, ip: '10.1.0.1', ports: [{ name: 'http', containerPort: 8080 }, { name: 'admin', containerPort: 9000 }] },
          { name: 'b', namespace: 'ns', labels: { app: 'x' }, ip: '10.1.0.2', ports: [{ name: 'http', containerPort: 9090 }] },
          { name: 'c', namespace: 'ns', labels: { app: 'x' }, ip: '10.1.0.3', ports: [{ name: 'other', containerPort: 7000 }] },
          { name: 'd', namespace: 'ns', labels: { app: 'x' }, ip: '10.1.0.4', ports: [{ name: 'http', containerPort: 8080 }], phase: 'Succeeded' },
          { name: 'h', namespace: 'ns', labels: { app: 'x' }, ip: '10.1.0.8', ready: false, hostname: 'h', subdomain: 'x', ports: [{ name: 'http', containerPort: 8080 }] },
          ...many,
        ],
        services: [
          { name: 'x', namespace: 'ns', selector: { app: 'x' }, ports: [{ name: 'web', port: 80, targetPort: 'http' }, { name: 'admin', port: 9000, targetPort: 'admin' }] },
          { name: 'bare', namespace: 'ns', clusterIP: 'None', selector: { app: 'x' } },
          { name: 'many', namespace: 'big', selector: { app: 'many' }, ports: [{ port: 80, targetPort: 8080 }] },
        ],
      },
    });
  });
  after(() => c.close());

  test('addresses offering the same ports share a subset (endpoints.RepackSubsets)', async () => {
    const x = (await call(c, '/api/v1/namespaces/ns/endpoints/x')).json;
    const summary = x.subsets.map((s: Json) => ({
      ready: (s.addresses ?? []).map((a: Json) => a.targetRef.name),
      notReady: (s.notReadyAddresses ?? []).map((a: Json) => [a.targetRef.name, a.hostname]),
      ports: s.ports.map((p: Json) => `${p.name}:${p.port}`),
    }));
    assert.deepEqual(summary, [
      { ready: ['a'], notReady: [], ports: ['admin:9000'] },
      { ready: ['a'], notReady: [['h', 'h']], ports: ['web:8080'] },
      { ready: ['b'], notReady: [], ports: ['web:9090'] },
    ]);
    // A headless service without ports lists bare addresses (c, which lacks every named port of x, included).
    const bare = (await call(c, '/api/v1/namespaces/ns/endpoints/bare')).json;
    assert.equal(bare.subsets.length, 1);
    assert.equal(bare.subsets[0].ports, undefined);
    assert.deepEqual(bare.subsets[0].addresses.map((a: Json) => a.ip), ['10.1.0.1', '10.1.0.2', '10.1.0.3']);
    assert.deepEqual(bare.subsets[0].notReadyAddresses.map((a: Json) => a.ip), ['10.1.0.8']);
  });

  test('over 1000 addresses: truncated, ready ones kept first, and annotated', async () => {
    const many = (await call(c, '/api/v1/namespaces/big/endpoints/many')).json;
    assert.deepEqual(many.metadata.annotations, { 'endpoints.kubernetes.io/over-capacity': 'truncated' });
    assert.equal(many.subsets.length, 1);
    assert.equal(many.subsets[0].addresses.length, 990);
    assert.equal(many.subsets[0].notReadyAddresses.length, 10);
    // The slices are not capped: 1005 endpoints over 11 slices of at most 100.
    const slices = (await call(c, '/apis/discovery.k8s.io/v1/namespaces/big/endpointslices')).json;
    assert.equal(slices.items.length, 11);
    assert.equal(slices.items.reduce((n: number, s: Json) => n + s.endpoints.length, 0), 1005);
  });
});

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

describe('port-forward upgrade negotiation', () => {
  let c: SimCluster;
  before(async () => {
    c = await SimCluster.start();
    c.addPod({ name: 'unscheduled', namespace: 'demo', nodeName: null, phase: 'Pending', ports: [{ containerPort: 80 }] });
    c.addPod({ name: 'pending', namespace: 'demo', phase: 'Pending', ports: [{ containerPort: 80 }] });
    c.addPod({ name: 'done', namespace: 'demo', phase: 'Succeeded', ip: '10.244.7.7', ports: [{ containerPort: 80 }] });
  });
  after(() => c.close());

  const statusOf = (r: RawReply) => JSON.parse(r.body) as { message: string; reason: string; code: number; kind: string };

  test('101 with the three headers, counted, socket handed on', async () => {
    const before = c.counters().upgrades;
    const r = await spdyUpgrade(c, PF('demo', 'web-0'));
    assert.equal(r.statusLine, 'HTTP/1.1 101 Switching Protocols');
    assert.deepEqual(r.headers.get('connection'), ['Upgrade']);
    assert.deepEqual(r.headers.get('upgrade'), ['SPDY/3.1']);
    assert.deepEqual(r.headers.get('x-stream-protocol-version'), ['portforward.k8s.io']);
    assert.ok(r.headers.get('date'));
    assert.deepEqual([...r.headers.keys()].sort(), ['connection', 'date', 'upgrade', 'x-stream-protocol-version']);
    assert.equal(c.counters().upgrades, before + 1);
    r.socket.destroy();
  });

  test('offers as a comma list or several headers; Upgrade is case-insensitive', async () => {
    const list = await spdyUpgrade(c, PF('demo', 'web-0'), { omit: ['X-Stream-Protocol-Version'], extra: ['X-Stream-Protocol-Version: v4.channel.k8s.io, portforward.k8s.io'] });
    assert.equal(list.status, 101);
    list.socket.destroy();
    const several = await spdyUpgrade(c, PF('demo', 'web-0'), { extra: ['X-Stream-Protocol-Version: something.else'] });
    assert.equal(several.status, 101);
    several.socket.destroy();
    const lower = await spdyUpgrade(c, PF('demo', 'web-0'), { omit: ['Upgrade'], extra: ['Upgrade: spdy/3.1'] });
    assert.equal(lower.status, 101);
    lower.socket.destroy();
  });

  test('missing X-Stream-Protocol-Version → 400', async () => {
    const r = await spdyUpgrade(c, PF('demo', 'web-0'), { omit: ['X-Stream-Protocol-Version'] });
    assert.equal(r.status, 400);
    assert.equal(statusOf(r).kind, 'Status');
    assert.equal(statusOf(r).message, 'unable to upgrade: X-Stream-Protocol-Version is required');
  });

  test('no common protocol → 403 with X-Accepted-Stream-Protocol-Versions', async () => {
    const r = await spdyUpgrade(c, PF('demo', 'web-0'), { omit: ['X-Stream-Protocol-Version'], extra: ['X-Stream-Protocol-Version: v4.channel.k8s.io'] });
    assert.equal(r.status, 403);
    assert.deepEqual(r.headers.get('x-accepted-stream-protocol-versions'), ['portforward.k8s.io']);
    assert.equal(statusOf(r).message, 'unable to upgrade: unable to negotiate protocol: client supports [v4.channel.k8s.io], server accepts [portforward.k8s.io]');
  });

  test('a pod that does not exist → 404', async () => {
    const r = await spdyUpgrade(c, PF('demo', 'ghost'));
    assert.equal(r.status, 404);
    assert.deepEqual(statusOf(r), {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'pods "ghost" not found',
      reason: 'NotFound',
      details: { name: 'ghost', kind: 'pods' },
      code: 404,
    });
  });

  test('an unscheduled pod → 400 no host; a pod without a running sandbox → the kubelet\'s pod not found', async () => {
    const unscheduled = await spdyUpgrade(c, PF('demo', 'unscheduled'));
    assert.equal(unscheduled.status, 400);
    assert.equal(statusOf(unscheduled).message, 'pod unscheduled does not have a host assigned');
    for (const pod of ['pending', 'done']) {
      const r = await spdyUpgrade(c, PF('demo', pod));
      assert.equal(r.status, 500, pod);
      assert.equal(statusOf(r).reason, 'InternalError');
      assert.equal(statusOf(r).message, `pod not found ("${pod}_demo")`);
    }
  });

  test('RBAC: create pods/portforward, with the exact message', async () => {
    const r = await spdyUpgrade(c, PF('demo', 'web-0'), { token: c.tokenFor('viewer') });
    assert.equal(r.status, 403);
    assert.deepEqual(statusOf(r), {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'pods "web-0" is forbidden: User "viewer" cannot create resource "pods/portforward" in API group "" in the namespace "demo"',
      reason: 'Forbidden',
      details: { name: 'web-0', kind: 'pods' },
      code: 403,
    });
    const scoped = await spdyUpgrade(c, PF('other', 'api-0'), { token: c.tokenFor('scoped') });
    assert.equal(statusOf(scoped).message, 'pods "api-0" is forbidden: User "scoped" cannot create resource "pods/portforward" in API group "" in the namespace "other"');
    const nowatch = await spdyUpgrade(c, PF('demo', 'web-0'), { token: c.tokenFor('nowatch') });
    assert.equal(nowatch.status, 101);
    nowatch.socket.destroy();
    const anonymous = await spdyUpgrade(c, PF('demo', 'web-0'), { token: null });
    assert.equal(anonymous.status, 401);
  });

  test('a WebSocket request gets a non-101 answer (kubectl falls back to SPDY)', async () => {
    const r = await raw(c, [
      `GET ${PF('demo', 'web-0')} HTTP/1.1`,
      `Host: ${new URL(c.url).host}`,
      `Authorization: Bearer ${c.adminToken}`,
      'Connection: Upgrade',
      'Upgrade: websocket',
      'Sec-WebSocket-Version: 13',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io',
    ]);
    assert.equal(r.status, 400);
    assert.equal(statusOf(r).message, 'query parameter "port" is required');
  });

  test('Upgrade other than SPDY/3.1, or no upgrade at all → 400', async () => {
    const h2c = await spdyUpgrade(c, PF('demo', 'web-0'), { omit: ['Upgrade'], extra: ['Upgrade: h2c'] });
    assert.equal(h2c.status, 400);
    assert.equal(statusOf(h2c).message, 'unable to upgrade: missing upgrade headers in request');
    const plain = await call(c, PF('demo', 'web-0'), { method: 'POST', headers: { 'X-Stream-Protocol-Version': 'portforward.k8s.io' } });
    assert.equal(plain.status, 400);
    assert.equal(plain.json.message, 'unable to upgrade: missing upgrade headers in request');
    const plainNoAuth = await call(c, PF('demo', 'web-0'), { method: 'POST', token: null });
    assert.equal(plainNoAuth.status, 401);
  });

  test('upgrades elsewhere are refused with a Status', async () => {
    const r = await spdyUpgrade(c, '/api/v1/namespaces/demo/pods/web-0/exec');
    assert.equal(r.status, 400);
    assert.equal(statusOf(r).kind, 'Status');
  });
});

describe('control endpoint', () => {
  let c: SimCluster;
  before(async () => {
    c = await SimCluster.start({ control: true });
  });
  after(() => c.close());

  function control(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: unknown }> {
    const url = new URL(path, c.controlUrl);
    return new Promise((resolve, reject) => {
      const req = httpRequest(url, { method, agent: false, headers: { 'Content-Type': 'application/json', ...headers } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, json: text ? (JSON.parse(text) as unknown) : undefined });
        });
      });
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }

  test('is plain HTTP on loopback', () => {
    assert.match(c.controlUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
  });

  test('counters and reset', async () => {
    const up = await spdyUpgrade(c, PF('demo', 'web-0'));
    up.socket.destroy();
    const counters = (await control('GET', '/counters')).json as Record<string, number>;
    assert.deepEqual(Object.keys(counters).sort(), ['bytesFromPods', 'bytesToPods', 'openConnections', 'pairs', 'streams', 'upgrades']);
    assert.ok((counters.upgrades ?? 0) >= 1);
    assert.equal((await control('POST', '/counters/reset')).status, 204);
    assert.equal(((await control('GET', '/counters')).json as Record<string, number>).upgrades, 0);
  });

  test('pods: add, replace, readiness, phase, terminating, delete', async () => {
    assert.equal((await control('POST', '/pods', { name: 'ctl-0', namespace: 'demo', labels: { app: 'web' }, ip: '10.244.0.99', ports: [{ name: 'http', containerPort: 8080 }] })).status, 204);
    const pod = await call(c, '/api/v1/namespaces/demo/pods/ctl-0');
    assert.equal(pod.json.status.podIP, '10.244.0.99');
    assert.equal((await control('POST', '/pods', { name: 'ctl-0', namespace: 'demo', labels: { app: 'web', v: '2' }, ip: '10.244.0.99' })).status, 204);
    const replaced = (await call(c, '/api/v1/namespaces/demo/pods/ctl-0')).json;
    assert.equal(replaced.metadata.uid, pod.json.metadata.uid);
    assert.equal(replaced.metadata.labels.v, '2');

    assert.equal((await control('POST', '/pods/demo/ctl-0/ready', { ready: false })).status, 204);
    const ready = (await call(c, '/api/v1/namespaces/demo/pods/ctl-0')).json.status.conditions.find((x: Json) => x.type === 'Ready');
    assert.equal(ready.status, 'False');
    assert.equal((await control('POST', '/pods/demo/ctl-0/terminating', { terminating: true })).status, 204);
    assert.ok((await call(c, '/api/v1/namespaces/demo/pods/ctl-0')).json.metadata.deletionTimestamp);
    assert.equal((await control('POST', '/pods/demo/ctl-0/phase', { phase: 'Failed' })).status, 204);
    assert.equal((await call(c, '/api/v1/namespaces/demo/pods/ctl-0')).json.status.phase, 'Failed');

    assert.equal((await control('DELETE', '/pods/demo/ctl-0')).status, 204);
    assert.equal((await call(c, '/api/v1/namespaces/demo/pods/ctl-0')).status, 404);
    const again = await control('DELETE', '/pods/demo/ctl-0');
    assert.equal(again.status, 404);
    assert.equal((again.json as { message: string }).message, 'pods "ctl-0" not found');
  });

  test('bad bodies are 400 Status with the field named', async () => {
    const bad = await control('POST', '/pods', { name: 'x', namespace: 'demo', ports: [{ containerPort: 'x' }] });
    assert.equal(bad.status, 400);
    assert.equal((bad.json as { message: string }).message, 'pod.ports[0].containerPort: expected an integer 1-65535, got "x"');
    const ready = await control('POST', '/pods/demo/web-0/ready', { ready: 'yes' });
    assert.equal(ready.status, 400);
    const notJson = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(new URL('/services', c.controlUrl), { method: 'POST', agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end('{nope');
    });
    assert.equal(notJson, 400);
    assert.equal((await control('GET', '/nothing')).status, 404);
  });

  test('services add and delete', async () => {
    assert.equal((await control('POST', '/services', { name: 'ctl', namespace: 'demo', selector: { app: 'echo' }, ports: [{ name: 'e', port: 7 }] })).status, 204);
    assert.equal((await call(c, '/api/v1/namespaces/demo/services/ctl')).status, 200);
    const slices = (await call(c, `/apis/discovery.k8s.io/v1/namespaces/demo/endpointslices?labelSelector=${encodeURIComponent('kubernetes.io/service-name=ctl')}`)).json;
    assert.equal(slices.items[0].endpoints.length, 2);
    assert.equal((await control('DELETE', '/services/demo/ctl')).status, 204);
    assert.equal((await call(c, '/api/v1/namespaces/demo/services/ctl')).status, 404);
  });

  test('workloads add, replace and delete', async () => {
    const deployment = { name: 'ctl', namespace: 'demo', selector: { matchLabels: { app: 'echo' } }, replicas: 2 };
    assert.equal((await control('POST', '/deployments', deployment)).status, 204);
    const got = (await call(c, '/apis/apps/v1/namespaces/demo/deployments/ctl')).json;
    assert.equal(got.status.readyReplicas, 2);
    assert.equal((await control('POST', '/deployments', { ...deployment, replicas: 3 })).status, 204);
    assert.equal((await call(c, '/apis/apps/v1/namespaces/demo/deployments/ctl')).json.metadata.generation, 2);
    const bad = await control('POST', '/statefulsets', { name: 'x', namespace: 'demo', selector: {} });
    assert.equal(bad.status, 400);
    assert.equal((bad.json as Json).message, 'statefulset.selector: empty selector is invalid for an apps/v1 workload');
    assert.equal((await control('DELETE', '/deployments/demo/ctl')).status, 204);
    assert.equal((await call(c, '/apis/apps/v1/namespaces/demo/deployments/ctl')).status, 404);
    const missing = await control('DELETE', '/replicasets/demo/ctl');
    assert.equal(missing.status, 404);
    assert.equal((missing.json as Json).message, 'replicasets.apps "ctl" not found');
  });

  test('faults: cut-watches, revoke, restart-apiserver', async () => {
    const w = new Watch(c, '/api/v1/namespaces/demo/pods?watch=1');
    await w.atLeast(1);
    assert.equal((await control('POST', '/cut-watches')).status, 204);
    assert.equal(await w.finished, 'abort');

    assert.equal((await control('POST', '/users', { name: 'ctl-user', token: 'ctl-token' })).status, 204);
    assert.equal((await call(c, '/api/v1/namespaces', { token: 'ctl-token' })).status, 200);
    assert.equal((await control('POST', '/revoke', { token: 'ctl-token' })).status, 204);
    assert.equal((await call(c, '/api/v1/namespaces', { token: 'ctl-token' })).status, 401);

    const url = c.url;
    assert.equal((await control('POST', '/restart-apiserver')).status, 204);
    assert.equal(c.url, url);
    assert.equal((await call(c, '/api/v1/namespaces/demo/pods/web-0')).status, 200);
  });

  test('refuses other Host headers and browser pages', async () => {
    assert.equal((await control('GET', '/counters', undefined, { Host: 'evil.example:80' })).status, 403);
    assert.equal((await control('GET', '/counters', undefined, { Origin: 'http://evil.example' })).status, 403);
  });
});

describe('lifecycle', () => {
  test('restartApiServer: same port and CA, every connection dropped, watches resume from their resourceVersion', async () => {
    const c = await SimCluster.start();
    try {
      const url = c.url;
      const list = (await call(c, '/api/v1/namespaces/demo/pods')).json;
      const w = new Watch(c, `/api/v1/namespaces/demo/pods?watch=1&resourceVersion=${list.metadata.resourceVersion}`);
      await w.opened();
      const upgraded = await spdyUpgrade(c, PF('demo', 'web-0'));
      assert.equal(upgraded.status, 101);
      const upgradedClosed = new Promise((resolve) => upgraded.socket.once('close', resolve));
      upgraded.socket.on('error', () => {});

      await c.restartApiServer();
      assert.equal(c.url, url);
      assert.notEqual(await w.finished, undefined);
      await upgradedClosed;

      c.setPodReady('demo', 'web-3', true);
      const resumed = new Watch(c, `/api/v1/namespaces/demo/pods?watch=1&resourceVersion=${list.metadata.resourceVersion}`);
      const [event] = await resumed.atLeast(1);
      assert.deepEqual([event?.type, event?.object.metadata.name], ['MODIFIED', 'web-3']);
      resumed.close();
    } finally {
      await c.close();
    }
  });

  // The timeout turns a regression (a wait for the 120 s handshake timeout) into a failure.
  test('a client stuck in its TLS handshake holds up neither restartApiServer() nor close()', { timeout: 15_000 }, async () => {
    const c = await SimCluster.start();
    try {
      const port = Number(new URL(c.url).port);
      /** A raw TCP connection that sends `bytes` (nothing, or half a ClientHello) and then nothing more. */
      const stuck = async (bytes: Buffer) => {
        const socket = netConnect(port, '127.0.0.1');
        socket.on('error', () => {});
        await new Promise((resolve) => socket.once('connect', resolve));
        if (bytes.length > 0) socket.write(bytes);
        const gone = new Promise((resolve) => socket.once('close', resolve));
        return { socket, gone };
      };
      const silent = await stuck(Buffer.alloc(0));
      const halfHello = await stuck(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01]));
      // Let the server accept both before restarting.
      await new Promise((r) => setTimeout(r, 50));

      let started = Date.now();
      await c.restartApiServer();
      assert.ok(Date.now() - started < 2000, `restart took ${Date.now() - started} ms`);
      await Promise.all([silent.gone, halfHello.gone]);
      assert.equal((await call(c, '/version')).status, 200, 'the restarted server answers');

      const again = await stuck(Buffer.alloc(0));
      await new Promise((r) => setTimeout(r, 50));
      started = Date.now();
      await c.close();
      assert.ok(Date.now() - started < 2000, `close took ${Date.now() - started} ms`);
      await again.gone;
    } finally {
      await c.close();
    }
  });

  test('close() releases the port and is idempotent', async () => {
    const c = await SimCluster.start();
    const { port } = new URL(c.url);
    await call(c, '/api/v1/namespaces/demo/pods');
    await Promise.all([c.close(), c.close()]);
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = netConnect(Number(port), '127.0.0.1', () => resolve(s));
        s.on('error', reject);
      }),
      /ECONNREFUSED/,
    );
  });

  test('a process that starts a cluster, uses it and closes it exits by itself', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kubesocks-sim-exit-'));
    try {
      const clusterModule = fileURLToPath(new URL('../src/sim/cluster.ts', import.meta.url));
      const script = join(dir, 'exit.mts');
      await writeFile(
        script,
        `
import { SimCluster } from ${JSON.stringify(clusterModule)};
import { request } from 'node:https';
import { connect } from 'node:tls';
const c = await SimCluster.start({ control: true });
const get = (path) => new Promise((resolve, reject) => {
  const req = request(new URL(path, c.url), { ca: c.caPem, headers: { Authorization: 'Bearer ' + c.adminToken } }, (res) => { res.resume(); res.on('end', resolve); });
  req.on('error', reject);
  req.end();
});
await get('/api/v1/namespaces/demo/pods');
// A watch left open, and an upgraded connection left open.
request(new URL('/api/v1/pods?watch=1', c.url), { ca: c.caPem, headers: { Authorization: 'Bearer ' + c.adminToken } }, (res) => res.resume()).on('error', () => {}).end();
const s = connect({ host: '127.0.0.1', port: Number(new URL(c.url).port), ca: c.caPem }, () => {
  s.write('POST /api/v1/namespaces/demo/pods/web-0/portforward HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer ' + c.adminToken + '\\r\\nConnection: Upgrade\\r\\nUpgrade: SPDY/3.1\\r\\nX-Stream-Protocol-Version: portforward.k8s.io\\r\\n\\r\\n');
});
s.on('error', () => {});
await new Promise((r) => s.once('data', r));
await c.close();
`,
      );
      const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const code = await new Promise<number | null>((resolve, reject) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error('the process did not exit within 15 s after close()'));
        }, 15_000);
        child.once('exit', (exitCode) => {
          clearTimeout(timer);
          resolve(exitCode);
        });
      });
      assert.equal(code, 0, stderr);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('scenarios', () => {
  test('validation names the field', () => {
    const cases: Array<[unknown, string]> = [
      [{ pods: [{ name: 'a', namespace: 'n' }, { name: 'b', namespace: 'n' }, { name: 'c', namespace: 'n', ports: [{ containerPort: 'x' }] }], services: [] }, 'scenario pods[2].ports[0].containerPort: expected an integer 1-65535, got "x"'],
      [{ pods: [{ name: 'a', namespace: 'n', ports: [{ containerPort: 70000 }] }] }, 'scenario pods[0].ports[0].containerPort: expected an integer 1-65535, got 70000'],
      [{ pods: [{ name: 'a', namespace: 'n', contianerPort: 1 }] }, 'scenario pods[0]: unknown field "contianerPort" (known: name, namespace, labels, ip, phase, ready, hostname, subdomain, terminating, nodeName, restartCount, ports)'],
      [{ pods: [{ name: 'a', namespace: 'n', ports: [{ containerPort: 80, backend: 'nonsense' }] }] }, 'scenario pods[0].ports[0].backend: expected HOST:PORT or one of http, echo, source, sink, closed, got "nonsense"'],
      [{ services: [{ name: 's', namespace: 'n', ports: [{ port: 1 }, { port: 2 }] }] }, 'scenario services[0].ports[0].name: required when a service has more than one port'],
      [{ services: [{ name: 's', namespace: 'n', type: 'ExternalName' }] }, 'scenario services[0].externalName: required for type ExternalName'],
      [{ pods: [{ name: 'a', namespace: 'n' }, { name: 'a', namespace: 'n' }] }, 'scenario pods[1]: duplicate pod n/a'],
      [{ users: [{ name: 'admin', token: 't' }] }, 'scenario users[0].name: expected a user name other than "admin", got "admin"'],
      [{ pods: 'x' }, 'scenario pods: expected an array, got "x"'],
      [[], 'scenario: expected an object, got an array'],
      [{ pods: [{ name: 'a', namespace: 'n', ip: '999.1.1.1' }] }, 'scenario pods[0].ip: expected an IP address, got "999.1.1.1"'],
    ];
    for (const [input, message] of cases) {
      assert.throws(() => validateScenario(input), (err: unknown) => {
        assert.ok(err instanceof ScenarioError);
        assert.equal(err.code, 'SCENARIO_INVALID');
        assert.equal(err.message, message);
        return true;
      });
    }
  });

  test('loadScenario reads the design card\'s example; bad JSON names the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kubesocks-scenario-'));
    try {
      const file = join(dir, 'scenario.json');
      const scenario: Scenario = {
        pods: [
          {
            name: 'web-0',
            namespace: 'demo',
            labels: { app: 'web' },
            ip: '10.244.0.10',
            phase: 'Running',
            ready: true,
            hostname: 'web-0',
            subdomain: 'web',
            ports: [{ name: 'http', containerPort: 8080, backend: '127.0.0.1:18080' }],
          },
        ],
        services: [{ name: 'web', namespace: 'demo', clusterIP: '10.96.0.10', selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] }],
      };
      await writeFile(file, JSON.stringify(scenario));
      assert.deepEqual(await loadScenario(file), scenario);
      await writeFile(file, '{ nope');
      await assert.rejects(loadScenario(file), (err: unknown) => err instanceof ScenarioError && err.message.startsWith(`scenario ${file}: invalid JSON:`));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
