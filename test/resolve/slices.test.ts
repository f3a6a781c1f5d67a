/**
 * EndpointSlice shapes the simulator's controller never writes: hand-made
 * slices without pods, dual-stack slices, pods whose named port differs, a
 * single unnamed port. Served by a static fake API server.
 */
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { KubeClient } from '../../src/kube/client.js';
import { Resolver } from '../../src/resolve/resolver.js';
import { KubesocksError } from '../../src/errors.js';
import { simCerts } from '../../src/sim/certs.js';

const ns = 'shapes';

function svc(name: string, ports: Array<{ name?: string; port: number; protocol?: string }>, extra: Record<string, unknown> = {}) {
  return { metadata: { name, namespace: ns, resourceVersion: '1' }, spec: { type: 'ClusterIP', clusterIP: '10.0.0.1', ports, ...extra } };
}

function slice(name: string, service: string, ports: Array<{ name: string; port: number }>, endpoints: unknown[], addressType = 'IPv4') {
  return {
    metadata: { name, namespace: ns, resourceVersion: '1', labels: { 'kubernetes.io/service-name': service } },
    addressType,
    ports: ports.map((p) => ({ ...p, protocol: 'TCP' })),
    endpoints,
  };
}

function podEp(pod: string, ip: string, conditions: Record<string, boolean> = { ready: true }) {
  return { addresses: [ip], conditions, targetRef: { kind: 'Pod', namespace: ns, name: pod, uid: `uid-${pod}` } };
}

const objects = {
  services: [
    svc('manual', [{ name: 'http', port: 80 }]),
    svc('dual', [{ name: 'http', port: 80 }], { clusterIPs: ['10.0.0.2', 'fd00::2'] }),
    svc('mixed', [{ name: 'http', port: 80 }]),
    svc('single', [{ port: 8000 }]),
    svc('nilready', [{ name: 'http', port: 80 }]),
  ],
  endpointslices: [
    slice('manual-1', 'manual', [{ name: 'http', port: 8080 }], [{ addresses: ['192.168.1.5'], conditions: { ready: true } }]),
    slice('dual-v4', 'dual', [{ name: 'http', port: 8080 }], [podEp('dual-0', '10.1.0.1'), podEp('dual-1', '10.1.0.2')]),
    slice('dual-v6', 'dual', [{ name: 'http', port: 8080 }], [podEp('dual-0', 'fd00::1:1'), podEp('dual-1', 'fd00::1:2')], 'IPv6'),
    // Pods of one service whose named targetPort resolves differently land in different slices.
    slice('mixed-a', 'mixed', [{ name: 'http', port: 8080 }], [podEp('old-0', '10.2.0.1')]),
    slice('mixed-b', 'mixed', [{ name: 'http', port: 9000 }], [podEp('new-0', '10.2.0.2')]),
    // A pod without the named port gets a slice without it: not a candidate.
    slice('mixed-c', 'mixed', [], [podEp('bare-0', '10.2.0.3')]),
    slice('single-1', 'single', [{ name: '', port: 8001 }], [podEp('single-0', '10.3.0.1')]),
    // `ready` left out means ready; terminating ones are skipped.
    slice('nilready-1', 'nilready', [{ name: 'http', port: 80 }], [podEp('n-0', '10.4.0.1', {}), podEp('n-1', '10.4.0.2', { ready: false, terminating: true })]),
  ],
  pods: [] as unknown[],
};

let server: https.Server;
let dir: string;
let client: KubeClient;
let resolver: Resolver;

before(async () => {
  const certs = await simCerts();
  server = https.createServer({ cert: certs.certPem, key: certs.keyPem }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://x');
    res.setHeader('content-type', 'application/json');
    if (url.searchParams.get('watch')) {
      res.writeHead(200);
      res.flushHeaders();
      return; // nothing ever changes
    }
    if (url.pathname === '/api/v1/namespaces') {
      res.end(JSON.stringify({ metadata: { resourceVersion: '1' }, items: [{ metadata: { name: ns } }] }));
      return;
    }
    const m = /^\/(?:api\/v1|apis\/discovery\.k8s\.io\/v1)\/namespaces\/shapes\/(services|endpointslices|pods)$/.exec(url.pathname);
    if (m) {
      res.end(JSON.stringify({ metadata: { resourceVersion: '1' }, items: objects[m[1] as keyof typeof objects] }));
      return;
    }
    res.writeHead(404);
    res.end(JSON.stringify({ kind: 'Status', code: 404, message: 'not found' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kubesocks-slices-'));
  const file = path.join(dir, 'config');
  fs.writeFileSync(
    file,
    JSON.stringify({
      'current-context': 'fake',
      clusters: [
        {
          name: 'fake',
          cluster: {
            server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
            'certificate-authority-data': Buffer.from(certs.caPem).toString('base64'),
          },
        },
      ],
      users: [{ name: 'u', user: { token: 't' } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'u', namespace: ns } }],
    }),
  );
  client = await KubeClient.load({ kubeconfig: file });
  resolver = new Resolver(client);
});

after(() => {
  resolver.close();
  client.close();
  server.closeAllConnections();
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function targets(host: string, port: number): Promise<string[]> {
  const r = await resolver.resolve(host, port);
  assert.equal(r.kind, 'cluster');
  return r.kind === 'cluster' ? r.candidates.map((c) => `${c.pod}:${c.port}`).sort() : [];
}

test('endpoints that are not pods cannot be port-forwarded', async () => {
  await assert.rejects(resolver.resolve('manual', 80), (err: KubesocksError) => {
    assert.equal(err.code, 'NOT_FORWARDABLE');
    assert.match(err.message, /service "manual" in namespace "shapes" has endpoints that are not pods \(e\.g\. 192\.168\.1\.5\); port-forward can only reach pods/);
    return true;
  });
});

test('dual-stack slices list each pod once', async () => {
  assert.deepEqual(await targets('dual.shapes', 80), ['dual-0:8080', 'dual-1:8080']);
  assert.deepEqual(await targets('fd00::2', 80), ['dual-0:8080', 'dual-1:8080']);
  assert.deepEqual(await targets('[FD00:0::2]', 80), ['dual-0:8080', 'dual-1:8080']);
});

test('a named port resolved per slice; pods without it are not candidates', async () => {
  assert.deepEqual(await targets('mixed', 80), ['new-0:9000', 'old-0:8080']);
  const r = await resolver.resolve('mixed', 80);
  assert.equal(r.kind === 'cluster' && r.description, 'service shapes/mixed port 80 → 8080/9000 (2 ready)');
});

test('a single unnamed port matches the slice port named ""', async () => {
  assert.deepEqual(await targets('single.shapes.svc.cluster.local', 8000), ['single-0:8001']);
});

test('a missing ready condition means ready; terminating endpoints are skipped', async () => {
  assert.deepEqual(await targets('nilready', 80), ['n-0:80']);
});
