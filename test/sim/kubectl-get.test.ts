/**
 * Real kubectl against the simulated cluster: discovery, server-side Tables,
 * `-o json`, watches, RBAC messages and port-forward (pod, service, deployment
 * and statefulset, with kubectl ≥ 1.31 falling back from WebSocket to SPDY).
 * Skipped, saying so, only when no kubectl is on PATH (CI installs one).
 */
import * as assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SimCluster } from '../../src/sim/cluster.js';

function findKubectl(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, 'kubectl');
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

const KUBECTL = findKubectl();
const skip = KUBECTL ? false : 'kubectl is not on PATH (CI installs it; see .ci/run)';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('real kubectl against the simulated cluster', { skip }, () => {
  let cluster: SimCluster;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const kubeconfigs = new Map<string, string>();
  const children = new Set<ChildProcess>();

  before(async () => {
    cluster = await SimCluster.start();
    dir = await mkdtemp(join(tmpdir(), 'kubesocks-kubectl-'));
    for (const user of ['admin', 'viewer', 'nowatch']) {
      const file = join(dir, `kubeconfig-${user}`);
      await cluster.writeKubeconfig(file, { user });
      kubeconfigs.set(user, file);
    }
    // Nothing of the developer's own kube setup leaks in, and kubectl's caches stay in `dir`.
    env = { PATH: process.env.PATH ?? '', HOME: dir, KUBECONFIG: join(dir, 'absent') };
  });

  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    await cluster.close();
    await rm(dir, { recursive: true, force: true });
  });

  function argsFor(user: string, args: string[]): string[] {
    return ['--kubeconfig', kubeconfigs.get(user) ?? '', '--cache-dir', join(dir, 'cache'), ...args];
  }

  function kubectl(args: string[], user = 'admin'): Promise<Run> {
    return new Promise((resolve) => {
      execFile(KUBECTL ?? 'kubectl', argsFor(user, args), { env, timeout: 30_000 }, (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** Starts a long-running kubectl; resolves once `ready` matches its output. */
  function startKubectl(args: string[], ready: RegExp, user = 'admin'): Promise<{ child: ChildProcess; output: () => string; match: RegExpExecArray }> {
    const child = spawn(KUBECTL ?? 'kubectl', argsFor(user, args), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    child.once('exit', () => children.delete(child));
    let output = '';
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`kubectl ${args.join(' ')}: no ${ready} within 20 s; output: ${output}`)), 20_000);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const match = ready.exec(output);
        if (match) {
          clearTimeout(timer);
          resolve({ child, output: () => output, match });
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`kubectl ${args.join(' ')} exited (${code}) before ${ready}: ${output}`));
      });
    });
  }

  function rows(stdout: string): string[][] {
    return stdout
      .trim()
      .split('\n')
      .map((line) => line.trim().split(/\s{2,}/));
  }

  test('get pods (context namespace and -n) prints the server-side table', async () => {
    for (const args of [['get', 'pods'], ['get', 'pods', '-n', 'demo']]) {
      const r = await kubectl(args);
      assert.equal(r.code, 0, r.stderr);
      const table = rows(r.stdout);
      assert.deepEqual(table[0], ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE']);
      const names = table.slice(1).map((row) => row[0]);
      assert.deepEqual(names, ['db-0', 'db-1', 'echo-0', 'echo-1', 'lonely', 'web-0', 'web-1', 'web-2', 'web-3']);
      const web3 = table.find((row) => row[0] === 'web-3') ?? [];
      assert.deepEqual(web3.slice(0, 4), ['web-3', '0/1', 'Running', '0']);
      assert.match(web3[4] ?? '', /^\d+s$/);
    }
  });

  test('get pods -A -o wide adds namespace, IP and node', async () => {
    const r = await kubectl(['get', 'pods', '-A', '-o', 'wide']);
    assert.equal(r.code, 0, r.stderr);
    const table = rows(r.stdout);
    assert.deepEqual(table[0], ['NAMESPACE', 'NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE', 'IP', 'NODE', 'NOMINATED NODE', 'READINESS GATES']);
    const api = table.find((row) => row[1] === 'api-0') ?? [];
    assert.equal(api[0], 'other');
    assert.equal(api[6], '10.244.1.10');
    assert.equal(api[7], 'sim-node-1');
  });

  test('get -o json: a single pod and a list', async () => {
    const one = await kubectl(['get', 'pod', 'web-0', '-o', 'json']);
    assert.equal(one.code, 0, one.stderr);
    const pod = JSON.parse(one.stdout) as { kind: string; status: { podIP: string }; spec: { nodeName: string } };
    assert.equal(pod.kind, 'Pod');
    assert.equal(pod.status.podIP, '10.244.0.10');
    assert.equal(pod.spec.nodeName, 'sim-node-1');

    const list = await kubectl(['get', 'pods', '-n', 'demo', '-l', 'app=web', '-o', 'json']);
    assert.equal(list.code, 0, list.stderr);
    const parsed = JSON.parse(list.stdout) as { kind: string; items: Array<{ kind: string; metadata: { name: string } }> };
    assert.equal(parsed.kind, 'List');
    assert.deepEqual(parsed.items.map((i) => i.metadata.name), ['web-0', 'web-1', 'web-2', 'web-3']);
    assert.equal(parsed.items[0]?.kind, 'Pod');
  });

  test('get svc', async () => {
    const r = await kubectl(['get', 'svc', '-n', 'demo', '-o', 'wide']);
    assert.equal(r.code, 0, r.stderr);
    const table = rows(r.stdout);
    assert.deepEqual(table[0], ['NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'AGE', 'SELECTOR']);
    const byName = new Map(table.slice(1).map((row) => [row[0], row]));
    assert.deepEqual(byName.get('web')?.slice(0, 5), ['web', 'ClusterIP', '10.96.100.10', '<none>', '80/TCP']);
    assert.deepEqual(byName.get('db')?.slice(0, 5), ['db', 'ClusterIP', 'None', '<none>', '5432/TCP']);
    assert.deepEqual(byName.get('docs')?.slice(0, 5), ['docs', 'ExternalName', '<none>', 'example.com', '443/TCP']);
    assert.equal(byName.get('web')?.[6], 'app=web');
  });

  test('get endpointslices', async () => {
    const r = await kubectl(['get', 'endpointslices', '-n', 'demo']);
    assert.equal(r.code, 0, r.stderr);
    const table = rows(r.stdout);
    assert.deepEqual(table[0], ['NAME', 'ADDRESSTYPE', 'PORTS', 'ENDPOINTS', 'AGE']);
    const web = table.find((row) => /^web-[a-z0-9]{5}$/.test(row[0] ?? '')) ?? [];
    assert.deepEqual(web.slice(1, 4), ['IPv4', '8080', '10.244.0.10,10.244.0.11,10.244.0.12 + 1 more...']);
    const db = table.find((row) => /^db-[a-z0-9]{5}$/.test(row[0] ?? '')) ?? [];
    assert.deepEqual(db.slice(1, 4), ['IPv4', '5432', '10.244.0.30,10.244.0.31']);
  });

  test('get ns', async () => {
    const r = await kubectl(['get', 'ns']);
    assert.equal(r.code, 0, r.stderr);
    const table = rows(r.stdout);
    assert.deepEqual(table[0], ['NAME', 'STATUS', 'AGE']);
    assert.deepEqual(
      table.slice(1).map((row) => row.slice(0, 2)),
      [
        ['default', 'Active'],
        ['demo', 'Active'],
        ['kube-system', 'Active'],
        ['other', 'Active'],
      ],
    );
  });

  test('get deploy, sts, rs and endpoints (apps/v1 discovery, short names)', async () => {
    const deploy = await kubectl(['get', 'deploy', '-n', 'demo']);
    assert.equal(deploy.code, 0, deploy.stderr);
    const table = rows(deploy.stdout);
    assert.deepEqual(table[0], ['NAME', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'AGE']);
    assert.deepEqual(table[1]?.slice(0, 4), ['web', '3/4', '4', '3']);

    const wide = rows((await kubectl(['get', 'deployments.apps', 'web', '-o', 'wide'])).stdout);
    assert.deepEqual(wide[0], ['NAME', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'AGE', 'CONTAINERS', 'IMAGES', 'SELECTOR']);
    assert.deepEqual(wide[1]?.slice(5), ['main', 'registry.k8s.io/kubesocks/sim-backend:1.0', 'app=web']);

    const sts = rows((await kubectl(['get', 'sts'])).stdout);
    assert.deepEqual(sts[0], ['NAME', 'READY', 'AGE']);
    assert.deepEqual(sts[1]?.slice(0, 2), ['db', '2/2']);

    const rs = await kubectl(['get', 'rs', '-n', 'demo']);
    assert.equal(rs.code, 0, rs.stderr);
    assert.match(rs.stderr, /No resources found in demo namespace/);

    const json = JSON.parse((await kubectl(['get', 'deploy', 'web', '-o', 'json'])).stdout) as { kind: string; spec: { selector: unknown }; status: { readyReplicas: number } };
    assert.equal(json.kind, 'Deployment');
    assert.deepEqual(json.spec.selector, { matchLabels: { app: 'web' } });
    assert.equal(json.status.readyReplicas, 3);

    const ep = rows((await kubectl(['get', 'endpoints', 'web', 'db'])).stdout);
    assert.deepEqual(ep[0], ['NAME', 'ENDPOINTS', 'AGE']);
    assert.deepEqual(ep[1]?.slice(0, 2), ['web', '10.244.0.10:8080,10.244.0.11:8080,10.244.0.12:8080']);
    assert.deepEqual(ep[2]?.slice(0, 2), ['db', '10.244.0.30:5432,10.244.0.31:5432']);

    // nowatch may get one Endpoints object by name, not list them.
    const one = await kubectl(['get', 'ep', 'web'], 'nowatch');
    assert.equal(one.code, 0, one.stderr);
    const many = await kubectl(['get', 'ep'], 'nowatch');
    assert.match(many.stderr, /endpoints is forbidden: User "nowatch" cannot list resource "endpoints" in API group "" in the namespace "demo"/);
    const viewer = await kubectl(['get', 'deploy', 'web'], 'viewer');
    assert.equal(viewer.code, 0, viewer.stderr);
  });

  test('port-forward deploy/web :8080 resolves the selector and picks a ready pod', async () => {
    const pf = await startKubectl(['port-forward', 'deploy/web', ':8080'], /Forwarding from 127\.0\.0\.1:(\d+) -> 8080/);
    const port = Number(pf.match[1]);
    const first = await httpGet(port, '/via/deployment');
    assert.match(first, /^pod web-[012] path \/via\/deployment\n$/, 'never the not-ready web-3');
    // kubectl picks one pod once and keeps it.
    const pod = /^pod (\S+)/.exec(first)?.[1];
    assert.equal(/^pod (\S+)/.exec(await httpGet(port, '/again'))?.[1], pod);
    pf.child.kill();
  });

  test('port-forward sts/db :5432 carries bytes to a db pod (echo)', async () => {
    const pf = await startKubectl(['port-forward', 'sts/db', ':5432'], /Forwarding from 127\.0\.0\.1:(\d+) -> 5432/);
    const port = Number(pf.match[1]);
    const echoed = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write('ping through a statefulset\n'));
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        text += chunk;
        if (text.endsWith('\n')) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on('error', reject);
      socket.setTimeout(10_000, () => socket.destroy(new Error('no echo')));
    });
    assert.equal(echoed, 'ping through a statefulset\n');
    pf.child.kill();
  });

  test('get pods -w prints changes as they happen', async () => {
    const watch = await startKubectl(['get', 'pods', '-n', 'demo', '-w', '--output-watch-events'], /web-3\s+0\/1/);
    cluster.setPodReady('demo', 'web-3', true);
    await waitFor(() => /MODIFIED\s+web-3\s+1\/1\s+Running/.test(watch.output()), () => `no MODIFIED row in: ${watch.output()}`);
    cluster.setPodReady('demo', 'web-3', false);
    watch.child.kill();
  });

  test('RBAC denials read as on a real cluster', async () => {
    const list = await kubectl(['get', 'pods'], 'nowatch');
    assert.notEqual(list.code, 0);
    assert.match(list.stderr, /Error from server \(Forbidden\): pods is forbidden: User "nowatch" cannot list resource "pods" in API group "" in the namespace "demo"/);

    const pf = await kubectl(['port-forward', 'pod/web-0', ':8080'], 'viewer');
    assert.notEqual(pf.code, 0);
    assert.match(pf.stderr, /pods "web-0" is forbidden: User "viewer" cannot create resource "pods\/portforward" in API group "" in the namespace "demo"/);
  });

  test('port-forward svc/web :80 carries HTTP to a ready web pod', async () => {
    const pf = await startKubectl(['port-forward', 'svc/web', ':80'], /Forwarding from 127\.0\.0\.1:(\d+) -> 8080/);
    const port = Number(pf.match[1]);
    const body = await httpGet(port, '/through/kubectl');
    assert.match(body, /^pod web-[012] path \/through\/kubectl\n$/);
    pf.child.kill();
  });

  test('port-forward to a port where nothing listens is reported as an error forwarding', async () => {
    const pf = await startKubectl(['port-forward', 'pod/web-0', ':9090'], /Forwarding from 127\.0\.0\.1:(\d+) -> 9090/);
    const port = Number(pf.match[1]);
    await httpGet(port, '/').catch(() => '');
    await waitFor(() => /an error occurred forwarding/.test(pf.output()), () => `kubectl said: ${pf.output()}`);
    assert.match(pf.output(), /connect: connection refused/);
    pf.child.kill();
  });
});

function httpGet(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
    req.end();
  });
}

async function waitFor(check: () => boolean, describe: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(describe());
    await new Promise((r) => setTimeout(r, 50));
  }
}
