/**
 * kubesocks through a real container runtime (issue 16): every pod below is a
 * CRI sandbox in a private containerd — runc, its own network namespace on a
 * bridge — and port-forward goes from the simulated API server to
 * containerd's own streaming server, as through a kubelet. What the simulated
 * kubelet only models is proved here against the real one: HTTP and echo by
 * service name through SOCKS5, HTTP CONNECT, the HTTP proxy and the dialer;
 * 256 MiB each way, sha256-checked; a refused port (the runtime's own text,
 * POD_REFUSED, failover to another real pod); a pod deleted mid-transfer (its
 * sandbox stopped); readiness changes and a pod added at run time; and real
 * kubectl port-forward through the same API server as a control.
 *
 * Run with `npm run test:runtime` (root, Linux; see docs/real-runtime.md).
 */
import * as assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isKubesocksError } from '../../src/errors.js';
import { expectedSourceDigest, sourceBytes } from '../../src/sim/backends.js';
import type { Containerd } from '../../src/sim/runtime/containerd.js';
import type { ScenarioPod, ScenarioPort } from '../../src/sim/types.js';
import { Proc, cleanEnv, curl, findBinary } from '../helpers/e2e-procs.js';
import { download, httpViaProxy, socks5, socks5Reply, waitUntil } from '../helpers/faults-rig.js';
import { exchangeToEnd } from '../helpers/streams.js';
import { runtimeSkip, startRealRig, startRuntime, type RealRig } from '../helpers/runtime-rig.js';

const NS = 'rt';
const MiB = 1024 * 1024;
const BULK = 256 * MiB;


function pod(name: string, app: string, ports: ScenarioPort[]): ScenarioPod {
  return { name, namespace: NS, labels: { app }, phase: 'Running', ready: true, ports };
}

const webPorts: ScenarioPort[] = [
  { name: 'http', containerPort: 8080, backend: 'http' },
  { name: 'echo', containerPort: 7, backend: 'echo' },
  { name: 'metrics', containerPort: 9999, backend: 'closed' },
];

const scenario = {
  namespaces: [NS],
  pods: [
    pod('web-0', 'web', webPorts),
    pod('web-1', 'web', webPorts),
    // `mixed`: the same named port refused on bad-0 (nothing listens), served on good-0.
    pod('bad-0', 'mixed', [{ name: 'api', containerPort: 8080, backend: 'closed' }]),
    pod('good-0', 'mixed', [{ name: 'api', containerPort: 8080, backend: 'http' }]),
    pod('bulk-0', 'bulk', [
      { name: 'source', containerPort: 9000, backend: 'source' },
      { name: 'sink', containerPort: 9001, backend: 'sink' },
    ]),
    pod('del-0', 'del', [
      { name: 'http', containerPort: 8080, backend: 'http' },
      { name: 'source', containerPort: 9000, backend: 'source' },
    ]),
    pod('del-1', 'del', [
      { name: 'http', containerPort: 8080, backend: 'http' },
      { name: 'source', containerPort: 9000, backend: 'source' },
    ]),
  ],
  services: [
    { name: 'web', namespace: NS, selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
    { name: 'echo', namespace: NS, selector: { app: 'web' }, ports: [{ name: 'echo', port: 7, targetPort: 'echo' }] },
    { name: 'mixed', namespace: NS, selector: { app: 'mixed' }, ports: [{ name: 'api', port: 80, targetPort: 'api' }] },
    {
      name: 'bulk',
      namespace: NS,
      selector: { app: 'bulk' },
      ports: [
        { name: 'source', port: 9000, targetPort: 'source' },
        { name: 'sink', port: 9001, targetPort: 'sink' },
      ],
    },
    {
      name: 'del',
      namespace: NS,
      selector: { app: 'del' },
      ports: [
        { name: 'http', port: 80, targetPort: 'http' },
        { name: 'source', port: 9000, targetPort: 'source' },
      ],
    },
  ],
};

/** The refusal containerd 1.6 writes on the error stream (runtime.md), ids and paths aside; kubectl's log quotes it with \". */
const RUNTIME_REFUSAL = /failed to connect to localhost:9999 inside namespace \\?"[0-9a-f]{64}\\?", IPv4: dial tcp4 127\.0\.0\.1:9999: connect: connection refused/;

/** An HTTP/1.1 GET over an open stream; resolves with the whole response once the server closes. */
async function getOver(stream: Socket, host: string, path = '/'): Promise<string> {
  const answer = await exchangeToEnd(stream, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  return answer.toString('latin1');
}

/** `CONNECT target` on the proxy's HTTP front; resolves with the socket after the status line and headers, and the status. */
function httpConnect(proxyPort: number, target: string): Promise<{ status: number; head: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect(proxyPort, '127.0.0.1');
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      socket.pause();
      const head = buffered.subarray(0, end).toString('latin1');
      const rest = buffered.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head, socket });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}

/** Reads a stream to its end (or failure) as text. */
function readAll(stream: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    stream.setEncoding('latin1');
    stream.on('data', (chunk: string) => (text += chunk));
    stream.once('end', () => resolve(text));
    stream.once('error', reject);
    stream.resume();
  });
}

/** Sends `COUNT\n` and COUNT bytes of the source pattern to a sink, honouring backpressure; resolves with its answer line. */
async function upload(stream: Socket, count: number): Promise<string> {
  const answer = new Promise<string>((resolve, reject) => {
    let text = '';
    stream.setEncoding('latin1');
    stream.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\n')) resolve(text.trim());
    });
    stream.once('error', reject);
    stream.once('close', () => reject(new Error(`the sink closed without an answer (got ${JSON.stringify(text)})`)));
  });
  const chunk = sourceBytes(0, 4 * MiB); // a whole number of pattern blocks, so every chunk is the same
  stream.write(`${count}\n`);
  for (let sent = 0; sent < count; ) {
    const n = Math.min(chunk.length, count - sent);
    sent += n;
    if (!stream.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
      await new Promise<void>((resolve, reject) => {
        stream.once('drain', resolve);
        stream.once('close', () => reject(new Error(`the upload broke after ${sent} bytes`)));
      });
    }
  }
  return answer;
}

describe('kubesocks through a real containerd', { skip: runtimeSkip }, () => {
  let runtime: Containerd;
  let rig: RealRig;

  before(async () => {
    runtime = await startRuntime();
    try {
      rig = await startRealRig(runtime, scenario);
    } catch (err) {
      await runtime.stop();
      throw err;
    }
  });

  after(async () => {
    await rig?.close();
    await runtime?.stop();
  });

  test('every pod is a real sandbox: its status.podIP is its address on the bridge, and it answers there', async () => {
    const real = await rig.cluster.realPod(NS, 'web-0');
    assert.ok(real, 'web-0 has a sandbox');
    assert.match(real.ip, /^10\.213\.\d+\.\d+$/);
    assert.ok((await runtime.cri.listPodSandboxIds()).includes(real.sandboxId));
    // The node reaches the pod's own network namespace directly (the CNI bridge is the gateway).
    const answer = await getOver(connect(8080, real.ip), real.ip);
    assert.match(answer, /^HTTP\/1\.[01] 200 /);
    assert.ok(answer.endsWith('pod web-0\n'), answer);
    // The proxy knows the pod by that real address too (pod DNS name from its IP).
    const byIp = await httpViaProxy(rig.proxyPort, `http://${real.ip.replaceAll('.', '-')}.${NS}.pod.cluster.local:8080/`);
    assert.equal(byIp.body, 'pod web-0\n');
  });

  test('HTTP and echo by service name: SOCKS5, HTTP CONNECT, the HTTP proxy and the dialer', async () => {
    // SOCKS5 (remote names), HTTP: busybox httpd in web-0 or web-1.
    const viaSocks = await getOver(await socks5(rig.proxyPort, `web.${NS}.svc.cluster.local`, 80), 'web');
    assert.match(viaSocks, /^HTTP\/1\.[01] 200 [^]*\r\n\r\npod web-[01]\n$/);
    // SOCKS5, echo: nc -ll -e cat.
    const echoSocket = await socks5(rig.proxyPort, `echo.${NS}`, 7);
    const line = await new Promise<string>((resolve) => {
      echoSocket.once('data', (chunk: Buffer) => resolve(chunk.toString()));
      echoSocket.write('hello through a network namespace\n');
    });
    assert.equal(line, 'hello through a network namespace\n');
    echoSocket.destroy();
    // HTTP CONNECT, echo.
    const tunnel = await httpConnect(rig.proxyPort, `echo.${NS}.svc:7`);
    assert.equal(tunnel.status, 200, tunnel.head);
    const echoed = await new Promise<string>((resolve) => {
      tunnel.socket.once('data', (chunk: Buffer) => resolve(chunk.toString()));
      tunnel.socket.resume();
      tunnel.socket.write('over CONNECT\n');
    });
    assert.equal(echoed, 'over CONNECT\n');
    tunnel.socket.destroy();
    // The HTTP proxy's absolute form.
    const viaHttp = await httpViaProxy(rig.proxyPort, `http://web.${NS}/`);
    assert.equal(viaHttp.status, 200);
    assert.match(viaHttp.body, /^pod web-[01]\n$/);
    // The library's dialer, by service name.
    const socket = await rig.dialer.connect(`echo.${NS}:7`);
    const back = await new Promise<string>((resolve, reject) => {
      socket.once('data', (chunk: Buffer) => resolve(chunk.toString()));
      socket.once('error', reject);
      socket.write('dialer\n');
    });
    assert.equal(back, 'dialer\n');
    socket.destroy();
    assert.deepEqual(rig.proxyErrors, []);
  });

  test('256 MiB each way at the same time through SOCKS5, sha256-checked at both ends', async () => {
    const down = await socks5(rig.proxyPort, `bulk.${NS}`, 9000);
    const up = await socks5(rig.proxyPort, `bulk.${NS}`, 9001);
    const downloaded = download(down);
    down.write(`${BULK}\n`);
    const [received, answer] = await Promise.all([downloaded, upload(up, BULK)]);
    up.destroy();
    assert.equal(received.ending, 'end', `download ended by ${received.ending} ${received.error?.message ?? ''}`);
    assert.equal(received.bytes, BULK);
    assert.equal(received.sha256, expectedSourceDigest(BULK), 'downloaded bytes differ from the source pattern');
    // The pod's own sha256sum over what it read.
    assert.equal(answer, `${BULK} ${expectedSourceDigest(BULK)}`);
  });

  test("a refused port: the runtime's own text, POD_REFUSED, a refused reply per protocol", async () => {
    const viaConnect = await httpConnect(rig.proxyPort, `web-0.${NS}:9999`);
    assert.equal(viaConnect.status, 502, viaConnect.head);
    const body = await readAll(viaConnect.socket);
    assert.match(body, RUNTIME_REFUSAL);
    assert.equal(await socks5Reply(rig.proxyPort, `web-0.${NS}`, 9999), 'ConnectionRefused');
    const viaHttp = await httpViaProxy(rig.proxyPort, `http://web-0.${NS}:9999/`);
    assert.equal(viaHttp.status, 502);
    assert.match(viaHttp.body, RUNTIME_REFUSAL);
    // The dialer: the error carries the code, with the runtime's reason in the message.
    const failure = await rig.dialer.connect(`web-0.${NS}:9999`).then(
      (socket) =>
        new Promise<unknown>((resolve) => {
          socket.once('error', resolve);
          socket.once('close', () => resolve(new Error('closed without an error')));
          socket.write('x');
        }),
      (err: unknown) => err,
    );
    assert.ok(isKubesocksError(failure), String(failure));
    assert.equal(failure.code, 'POD_REFUSED', failure.message);
    assert.match(failure.message, RUNTIME_REFUSAL);
  });

  test('a service whose pod refuses fails over to the other real pod, every time', async () => {
    for (let i = 0; i < 6; i++) {
      const answer = await httpViaProxy(rig.proxyPort, `http://mixed.${NS}/`);
      assert.equal(answer.status, 200, answer.body);
      assert.equal(answer.body, 'pod good-0\n');
    }
    // bad-0 really refuses: asked by name, the runtime says so.
    const direct = await httpViaProxy(rig.proxyPort, `http://bad-0.${NS}:8080/`);
    assert.equal(direct.status, 502);
    assert.match(direct.body, /failed to connect to localhost:8080 inside namespace/);
  });

  test('a pod deleted mid-transfer: its sandbox stops, the transfer fails (never a clean end), the service moves to the other pod', async () => {
    const before = await rig.cluster.realPod(NS, 'del-0');
    assert.ok(before);
    const stream = await socks5(rig.proxyPort, `del-0.${NS}`, 9000);
    let deleted = false;
    const total = 1024 * MiB;
    const result = download(stream, (bytes) => {
      if (!deleted && bytes >= 16 * MiB) {
        deleted = true;
        rig.cluster.deletePod(NS, 'del-0');
      }
    });
    stream.write(`${total}\n`);
    const seen = await result;
    assert.ok(deleted, 'the transfer reached 16 MiB');
    assert.notEqual(seen.ending, 'end', `a broken transfer ended cleanly after ${seen.bytes} bytes`);
    assert.ok(seen.bytes < total);
    await waitUntil(async () => !(await runtime.cri.listPodSandboxIds()).includes(before.sandboxId), 'del-0 sandbox removed', 30_000, 100);
    await waitUntil(async () => (await httpViaProxy(rig.proxyPort, `http://del.${NS}/`)).body === 'pod del-1\n', 'del → del-1', 15_000, 100);
    for (let i = 0; i < 4; i++) assert.equal((await httpViaProxy(rig.proxyPort, `http://del.${NS}/`)).body, 'pod del-1\n');
  });

  test('readiness changes move the service between real pods; a pod added at run time gets a sandbox and traffic', async () => {
    const answersFrom = async (n: number): Promise<Set<string>> => {
      const pods = new Set<string>();
      for (let i = 0; i < n; i++) pods.add((await httpViaProxy(rig.proxyPort, `http://web.${NS}/`)).body.trim());
      return pods;
    };
    rig.cluster.setPodReady(NS, 'web-0', false);
    await waitUntil(async () => {
      const pods = await answersFrom(6);
      return pods.size === 1 && pods.has('pod web-1');
    }, 'web only on web-1', 15_000, 100);
    rig.cluster.setPodReady(NS, 'web-0', true);
    rig.cluster.setPodReady(NS, 'web-1', false);
    await waitUntil(async () => {
      const pods = await answersFrom(6);
      return pods.size === 1 && pods.has('pod web-0');
    }, 'web only on web-0', 15_000, 100);
    rig.cluster.setPodReady(NS, 'web-1', true);

    rig.cluster.addPod(pod('web-2', 'web', webPorts));
    await rig.cluster.sandboxesSettled();
    const real = await rig.cluster.realPod(NS, 'web-2');
    assert.ok(real);
    assert.match(real.ip, /^10\.213\./);
    await waitUntil(async () => (await httpViaProxy(rig.proxyPort, `http://web-2.${NS}:8080/`)).body === 'pod web-2\n', 'web-2 by name', 15_000, 100);
    await waitUntil(async () => (await answersFrom(6)).has('pod web-2'), 'web-2 behind the service', 15_000, 100);
  });

  describe('real kubectl port-forward through the same API server (the control)', () => {
    const kubectl = findBinary('/usr/bin/kubectl', 'kubectl');
    let cacheDir: string;
    const procs: Proc[] = [];

    before(async () => {
      if (!kubectl) throw new Error('kubectl is not installed (scripts/ensure-test-tools.sh installs it)');
      cacheDir = await mkdtemp(join(tmpdir(), 'kubesocks-runtime-kubectl-'));
    });

    after(async () => {
      for (const p of procs) p.kill();
      await Promise.all(procs.map((p) => p.closed));
      if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
    });

    async function portForward(target: string, port: number): Promise<{ proc: Proc; local: number }> {
      const proc = new Proc(
        kubectl ?? 'kubectl',
        ['--kubeconfig', rig.kubeconfig, '--cache-dir', cacheDir, 'port-forward', '-n', NS, '--address', '127.0.0.1', target, `:${port}`],
        { env: cleanEnv(), keepStdin: true },
      );
      procs.push(proc);
      const m = await proc.waitFor(/Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)/, { stream: 'stdout', timeoutMs: 20_000 });
      return { proc, local: Number(m[1]) };
    }

    test('kubectl port-forward pod/web-0 carries HTTP to the real web-0', async () => {
      const { proc, local } = await portForward('pod/web-0', 8080);
      for (let i = 0; i < 3; i++) {
        const res = await curl(['-sS', `http://127.0.0.1:${local}/`]);
        assert.equal(res.code, 0, `${res.output}\n${proc.output}`);
        assert.equal(res.stdout, 'pod web-0\n');
      }
    });

    test('kubectl port-forward to a refused port prints the same runtime text kubesocks reports', async () => {
      const { proc, local } = await portForward('pod/web-0', 9999);
      const res = await curl(['-sS', '--max-time', '5', `http://127.0.0.1:${local}/`]);
      assert.notEqual(res.code, 0, 'curl through a refused forward must fail');
      await proc.waitFor(RUNTIME_REFUSAL, { stream: 'stderr', timeoutMs: 10_000 }).catch(() => undefined);
      assert.match(proc.output, RUNTIME_REFUSAL);
    });

    test('kubectl port-forward carries 64 MiB from the real source intact', async () => {
      const { local } = await portForward('pod/bulk-0', 9000);
      const socket = connect(local, '127.0.0.1');
      await new Promise((resolve) => socket.once('connect', resolve));
      const count = 64 * MiB;
      const done = download(socket);
      socket.write(`${count}\n`);
      const seen = await done;
      assert.equal(seen.bytes, count);
      assert.equal(seen.sha256, expectedSourceDigest(count));
    });
  });
});
