/**
 * Trying to leave a mess (issue 16: "tears everything down on every exit
 * path"): a process that started containerd and a pod is killed with SIGTERM
 * (the exit hook cleans up at once) and with SIGKILL (nothing can run; the
 * next start on the machine removes what the dead process left). Afterwards
 * no bridge device, no mount, no process and no directory of that instance
 * may remain. And the relay passes the runtime's own refusals through
 * unchanged: an upgrade without a protocol, or with one it does not speak.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SimCluster } from '../../src/sim/cluster.js';
import { Containerd } from '../../src/sim/runtime/containerd.js';
import { Proc, REPO_ROOT } from '../helpers/e2e-procs.js';
import { waitUntil } from '../helpers/faults-rig.js';
import { runtimeSkip, startRuntime } from '../helpers/runtime-rig.js';

const CHILD = fileURLToPath(new URL('../helpers/runtime-child.ts', import.meta.url));

interface Started {
  dir: string;
  bridge: string;
  sandboxId: string;
}

/** What of an instance is still on the machine. */
function leftovers(started: Started): string[] {
  const found: string[] = [];
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  if (links.includes(`${started.bridge}:`)) found.push(`bridge ${started.bridge}`);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((line) => line.includes(started.dir));
  if (mounts.length > 0) found.push(`${mounts.length} mount(s) under ${started.dir}`);
  if (existsSync(started.dir)) found.push(`directory ${started.dir}`);
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
      if (cmdline.includes(started.dir)) found.push(`process ${pid}: ${cmdline.replaceAll('\0', ' ').slice(0, 80)}`);
    } catch {
      // gone
    }
  }
  if (existsSync(`/run/containerd/runc/k8s.io/${started.sandboxId}`)) found.push(`runc state of sandbox ${started.sandboxId.slice(0, 12)}`);
  return found;
}

/** Starts a child that runs containerd with one pod and reports it; resolves once it runs. */
async function startChild(): Promise<{ proc: Proc; started: Started }> {
  const proc = new Proc(process.execPath, ['--import', 'tsx', CHILD], { cwd: REPO_ROOT, keepStdin: true });
  const m = await proc.waitFor(/^READY (\S+) (\S+) (\S+)$/m, { stream: 'stdout', timeoutMs: 60_000 });
  return { proc, started: { dir: m[1]!, bridge: m[2]!, sandboxId: m[3]! } };
}

describe('a real runtime leaves nothing behind, however its process ends', { skip: runtimeSkip }, () => {
  test('SIGTERM: the exit path removes the pod, containerd, the mounts, the bridge and the directory', async () => {
    const { proc, started } = await startChild();
    assert.ok(leftovers(started).length > 0, 'the child really runs an instance');
    proc.signal('SIGTERM');
    await proc.settle(30_000);
    await waitUntil(() => leftovers(started).length === 0, () => `nothing left; still: ${leftovers(started).join('; ')}`, 15_000, 100);
  });

  test('SIGKILL: the next start on the machine removes what the dead process left', async () => {
    const { proc, started } = await startChild();
    proc.kill('SIGKILL');
    await proc.settle(10_000);
    assert.ok(leftovers(started).length > 0, 'SIGKILL leaves the instance behind');
    const next = await startRuntime();
    try {
      await waitUntil(() => leftovers(started).length === 0, () => `the sweep removed it all; still: ${leftovers(started).join('; ')}`, 15_000, 100);
    } finally {
      await next.stop();
    }
  });

  describe("the relay passes the runtime's refusals through", () => {
    let runtime: Containerd;
    let cluster: SimCluster;

    before(async () => {
      runtime = await startRuntime();
      cluster = await SimCluster.start({
        containerd: runtime,
        scenario: { pods: [{ name: 'p-0', namespace: 'relay', phase: 'Running', ready: true, ports: [{ containerPort: 7, backend: 'echo' }] }], services: [] },
      });
    });

    after(async () => {
      await cluster?.close();
      await runtime?.stop();
    });

    /** The API server's whole answer to an upgrade request with `headers`. */
    async function answer(headers: string): Promise<string> {
      const url = new URL(cluster.url);
      const socket = tlsConnect({ host: url.hostname, port: Number(url.port), ca: cluster.caPem, servername: 'localhost' });
      await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
      socket.write(`POST /api/v1/namespaces/relay/pods/p-0/portforward HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${cluster.adminToken}\r\n${headers}Content-Length: 0\r\n\r\n`);
      let text = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => (text += chunk));
      await new Promise((resolve) => {
        socket.once('close', resolve);
        setTimeout(() => socket.destroy(), 3000).unref();
      });
      return text;
    }

    test('an unknown protocol: the runtime answers 403 with its negotiation message', async () => {
      const text = await answer('Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: nonsense.k8s.io\r\n');
      assert.match(text, /^HTTP\/1\.1 403 /);
      assert.match(text, /unable to upgrade: unable to negotiate protocol/);
    });

    test('a client that vanishes right after the upgrade request costs nothing: the pod still answers', async () => {
      const url = new URL(cluster.url);
      for (let i = 0; i < 20; i++) {
        const socket = tlsConnect({ host: url.hostname, port: Number(url.port), ca: cluster.caPem, servername: 'localhost' });
        await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
        socket.end(
          `POST /api/v1/namespaces/relay/pods/p-0/portforward HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${cluster.adminToken}\r\n` +
            'Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n',
        );
        socket.destroy();
      }
      const text = await answer('Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n');
      assert.match(text, /^HTTP\/1\.1 101 /);
    });
  });
});
