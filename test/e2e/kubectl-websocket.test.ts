/**
 * Real kubectl 1.32 (client-go's tunnelling dialer) against the simulated
 * API server: by default it takes the WebSocket tunnel (KEP-4006), which the
 * simulator's per-protocol counters show, and carries HTTP and 64 MiB each
 * way, sha256-checked; with the simulator's PortForwardWebsockets off it
 * falls back to SPDY, as against an API server older than 1.31.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { demoScenario } from '../../src/sim/scenario.js';
import { expectedSourceDigest } from '../../src/sim/backends.js';
import { Proc, cleanEnv, findBinary } from '../helpers/e2e-procs.js';
import { startTestCluster, type TestCluster } from '../helpers/sim.js';

const kubectl = findBinary('/usr/lib/google-cloud-sdk/bin/kubectl.1.32');
const MiB = 1024 * 1024;
const BULK = 64 * MiB;

describe('kubectl 1.32 port-forward over the WebSocket tunnel', { skip: kubectl ? false : 'kubectl 1.32 is not installed' }, () => {
  let tc: TestCluster;
  const procs: Proc[] = [];

  before(async () => {
    const scenario = demoScenario();
    scenario.pods.push({
      name: 'bulk-0',
      namespace: 'demo',
      phase: 'Running',
      ready: true,
      ports: [
        { name: 'source', containerPort: 9000, backend: 'source' },
        { name: 'sink', containerPort: 9001, backend: 'sink' },
      ],
    });
    tc = await startTestCluster(scenario);
  });
  after(async () => {
    for (const p of procs) p.kill();
    await Promise.all(procs.map((p) => p.closed));
    await tc?.close();
  });

  async function portForward(target: string, ports: string[], env: Record<string, string> = {}): Promise<{ proc: Proc; locals: number[] }> {
    const proc = new Proc(kubectl!, ['--kubeconfig', tc.kubeconfig, 'port-forward', '--address', '127.0.0.1', target, ...ports.map((p) => `:${p}`)], {
      env: cleanEnv(env),
      keepStdin: true,
    });
    procs.push(proc);
    const locals: number[] = [];
    for (const port of ports) {
      const m = await proc.waitFor(new RegExp(`Forwarding from 127\\.0\\.0\\.1:(\\d+) -> ${port}`), { stream: 'stdout', timeoutMs: 20_000 });
      locals.push(Number(m[1]));
    }
    return { proc, locals };
  }

  test('by default kubectl takes the WebSocket tunnel and carries HTTP and 64 MiB each way, sha256-checked', async () => {
    const before = tc.cluster.counters().tunnels;
    const { proc, locals } = await portForward('pod/bulk-0', ['9000', '9001']);
    const [source, sink] = locals as [number, number];
    const web = await portForward('pod/web-0', ['8080']);
    assert.equal(await httpGet(web.locals[0]!, '/over-websocket'), 'pod web-0 path /over-websocket\n');

    // Download: the source backend's pattern, hashed here against the expected digest.
    const down = await transfer(source, Buffer.from(`${BULK}\n`), BULK);
    assert.equal(down.bytes, BULK);
    assert.equal(down.sha256, expectedSourceDigest(BULK));
    // Upload: the sink answers with the byte count and sha256 of what reached the pod.
    const payload = randomBytes(BULK);
    const answer = await transfer(sink, Buffer.concat([Buffer.from(`${BULK}\n`), payload]), undefined);
    assert.equal(answer.text.trim(), `${BULK} ${createHash('sha256').update(payload).digest('hex')}`);

    const now = tc.cluster.counters().tunnels;
    assert.ok(now['SPDY/3.1+portforward.k8s.io'] - before['SPDY/3.1+portforward.k8s.io'] >= 2, JSON.stringify(now));
    assert.equal(now['SPDY/3.1'], before['SPDY/3.1'], `kubectl used SPDY: ${JSON.stringify(now)}`);
    assert.doesNotMatch(proc.stderr, /error/i, proc.output);
  });

  test('with PortForwardWebsockets off kubectl falls back to SPDY and still carries HTTP', async (ctx) => {
    tc.cluster.setFeatureGates({ PortForwardWebsockets: false });
    ctx.after(() => tc.cluster.setFeatureGates({ PortForwardWebsockets: true }));
    const before = tc.cluster.counters().tunnels;
    const { locals } = await portForward('pod/web-1', ['8080']);
    assert.equal(await httpGet(locals[0]!, '/fallback'), 'pod web-1 path /fallback\n');
    const now = tc.cluster.counters().tunnels;
    assert.equal(now['SPDY/3.1'] - before['SPDY/3.1'], 1, JSON.stringify(now));
    assert.equal(now['SPDY/3.1+portforward.k8s.io'], before['SPDY/3.1+portforward.k8s.io'], JSON.stringify(now));
  });

  test('KUBECTL_PORT_FORWARD_WEBSOCKETS=false forces SPDY even where the tunnel is on', async () => {
    const before = tc.cluster.counters().tunnels;
    const { locals } = await portForward('pod/web-2', ['8080'], { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' });
    assert.equal(await httpGet(locals[0]!, '/forced'), 'pod web-2 path /forced\n');
    const now = tc.cluster.counters().tunnels;
    assert.equal(now['SPDY/3.1'] - before['SPDY/3.1'], 1, JSON.stringify(now));
    assert.equal(now['SPDY/3.1+portforward.k8s.io'], before['SPDY/3.1+portforward.k8s.io']);
  });
});

function httpGet(port: number, path: string): Promise<string> {
  return transfer(port, Buffer.from(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`), undefined).then((r) => r.text.split('\r\n\r\n')[1] ?? '');
}

/** Writes `payload`, reads until `expect` bytes arrived (or the end), hashing what came back. */
function transfer(port: number, payload: Buffer, expect: number | undefined): Promise<{ bytes: number; sha256: string; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const hash = createHash('sha256');
    const small: Buffer[] = [];
    let bytes = 0;
    const done = (): void => {
      socket.destroy();
      resolve({ bytes, sha256: hash.digest('hex'), text: Buffer.concat(small).toString() });
    };
    socket.on('data', (c: Buffer) => {
      bytes += c.length;
      hash.update(c);
      if (bytes <= 64 * 1024) small.push(c);
      if (expect !== undefined && bytes >= expect) done();
    });
    socket.once('end', () => (expect === undefined || bytes >= expect ? done() : reject(new Error(`the stream ended after ${bytes} of ${expect} bytes`))));
    socket.once('error', reject);
    socket.setTimeout(120_000, () => socket.destroy(new Error('transfer timed out')));
    socket.write(payload);
  });
}
