/**
 * The kubeconfig rewritten under a running `kubesocks serve` (the real CLI
 * process, real SOCKS5 clients): to a second cluster by write-then-rename
 * while the first still serves a socket, then to a restarted cluster (new
 * port, CA and token) written in place, then to garbage. No restart: the
 * next connection by service name reaches the cluster the file names now.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SimCluster } from '../../src/sim/cluster.js';
import type { Scenario } from '../../src/sim/types.js';
import { cleanEnv, Proc } from '../helpers/e2e-procs.js';
import { echoOnce, ms, NS, readyPod, socks5, summarize, waitUntil } from '../helpers/faults-rig.js';
import { TEST_TRANSPORT_ARGS } from '../helpers/transport.js';

/** Services `web` (HTTP, answers with its pod's name) and `echo` over one pod named after its cluster. */
function scenario(tag: string): Scenario {
  return {
    namespaces: [NS],
    pods: [
      readyPod(
        `web-${tag}-0`,
        '10.244.1.10',
        [
          { name: 'http', containerPort: 8080, backend: 'http' },
          { name: 'echo', containerPort: 7, backend: 'echo' },
        ],
        'web',
      ),
    ],
    services: [
      { name: 'web', namespace: NS, selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
      { name: 'echo', namespace: NS, selector: { app: 'web' }, ports: [{ name: 'echo', port: 7, targetPort: 'echo' }] },
    ],
  };
}

/** A GET to web.NS:80 over a new SOCKS5 connection (by name, resolved by kubesocks); the pod that answered. */
async function whoAnswers(proxyPort: number): Promise<string> {
  const socket = await socks5(proxyPort, `web.${NS}`, 80);
  return new Promise((resolve, reject) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.once('error', reject);
    socket.once('end', () => {
      const pod = /pod (\S+) path /.exec(text)?.[1];
      if (pod) resolve(pod);
      else reject(new Error(`no pod name in ${JSON.stringify(text)}`));
    });
    socket.write(`GET / HTTP/1.0\r\nHost: web.${NS}\r\n\r\n`);
  });
}

/** A new SOCKS5 connection to echo.NS:7 by name, one round trip, closed. */
async function echoOverNewConnection(proxyPort: number): Promise<void> {
  const socket = await socks5(proxyPort, `echo.${NS}`, 7);
  await echoOnce(socket, 'ping');
  socket.destroy();
}

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function startSim(tag: string): Promise<SimCluster> {
  const sim = await SimCluster.start({ scenario: scenario(tag), ownCa: true });
  cleanups.push(() => sim.close());
  return sim;
}

describe('kubeconfig rewritten under a running kubesocks serve', () => {
  test('another cluster by rename, a restarted cluster in place, then garbage: the next SOCKS5 connection follows the file; old pooled connections take no new sockets; problems are one line; no token or certificate is printed', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'kubesocks-reload-cli-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const kubeconfig = join(dir, 'config');
    const a = await startSim('a');
    await writeFile(kubeconfig, a.kubeconfigYaml({ namespace: NS }), { mode: 0o600 });

    const proc = new Proc(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '--kubeconfig', kubeconfig, '--listen', '127.0.0.1:0', ...TEST_TRANSPORT_ARGS], { env: cleanEnv() });
    cleanups.push(async () => {
      proc.signal('SIGTERM');
      await proc.settle(5_000);
    });
    const proxyPort = Number((await proc.waitFor(/listening on 127\.0\.0\.1:(\d+)/, { stream: 'stderr', timeoutMs: 30_000 }))[1]);
    assert.equal(await whoAnswers(proxyPort), 'web-a-0');
    const old: Socket = await socks5(proxyPort, `echo.${NS}`, 7);
    await echoOnce(old, 'on the first cluster');
    const aPairs = a.counters().pairs;
    const aUpgrades = a.counters().upgrades;

    // 1. Another cluster (own CA, own token), written to a temporary file and renamed over the kubeconfig.
    const b = await startSim('b');
    let from = proc.stderr.length;
    const renamedAt = performance.now();
    await writeFile(`${kubeconfig}.tmp`, b.kubeconfigYaml({ namespace: NS }), { mode: 0o600 });
    await rename(`${kubeconfig}.tmp`, kubeconfig);
    const bLine = (await proc.waitFor(/kubesocks: (kubeconfig changed: .*)\n/, { stream: 'stderr', from, timeoutMs: 5_000 }))[1] ?? '';
    const bServer = new URL(b.url);
    assert.equal(
      bLine,
      `kubeconfig changed: context kubesocks-sim now uses server https://127.0.0.1:${bServer.port} (re-read from ${kubeconfig}; changed: server, certificate-authority, token)`,
    );
    await echoOverNewConnection(proxyPort);
    const renameMs = performance.now() - renamedAt;
    assert.equal(await whoAnswers(proxyPort), 'web-b-0');
    for (let i = 0; i < 3; i++) assert.equal(await whoAnswers(proxyPort), 'web-b-0');
    // The socket made before carries on over the first cluster's connection, which takes nothing new.
    await echoOnce(old, 'still on the first cluster');
    assert.equal(a.counters().pairs, aPairs, 'no new socket on the old connection');
    assert.equal(a.counters().upgrades, aUpgrades, 'no new connection to the old cluster');
    old.destroy();
    await waitUntil(() => a.counters().openConnections === 0, 'the old connection to close after its last socket', 5_000);

    // 2. That cluster stops; a new one starts on another port with a new CA and token; the file is rewritten in place.
    await a.close();
    await b.close();
    const c = await startSim('c');
    assert.notEqual(c.url, b.url);
    from = proc.stderr.length;
    const writtenAt = performance.now();
    await writeFile(kubeconfig, c.kubeconfigYaml({ namespace: NS }));
    await proc.waitFor(new RegExp(`kubesocks: kubeconfig changed: context kubesocks-sim now uses server https://127\\.0\\.0\\.1:${new URL(c.url).port} \\(re-read from `), {
      stream: 'stderr',
      from,
      timeoutMs: 5_000,
    });
    await echoOverNewConnection(proxyPort);
    const restartMs = performance.now() - writtenAt;
    assert.equal(await whoAnswers(proxyPort), 'web-c-0');
    assert.ok(restartMs < 5_000, `the next connection worked ${restartMs} ms after the write`);

    // 3. Garbage (half a kubeconfig, then junk), written twice: one line, and the cluster keeps answering.
    const good = c.kubeconfigYaml({ namespace: NS });
    const garbage = `${good.slice(0, good.indexOf('contexts:'))}  - : [ {{\n\t: :\n`;
    assert.ok(garbage.includes(c.adminToken));
    from = proc.stderr.length;
    await writeFile(kubeconfig, garbage);
    await proc.waitFor(/previous configuration stays in use/, { stream: 'stderr', from, timeoutMs: 5_000 });
    await writeFile(kubeconfig, garbage);
    await sleep(1_000);
    const garbageLines = proc.stderr.slice(from).split('\n').filter((l) => l !== '');
    assert.equal(garbageLines.length, 1, garbageLines.join('\n'));
    assert.match(garbageLines[0] ?? '', new RegExp(`^kubesocks: kubeconfig ${kubeconfig.replace(/\./g, '\\.')} cannot be read now \\(.+\\); the previous configuration stays in use$`));
    assert.equal(await whoAnswers(proxyPort), 'web-c-0');

    // Nothing secret was ever printed.
    for (const sim of [a, b, c]) {
      assert.ok(!proc.stderr.includes(sim.adminToken), 'a token on stderr');
      assert.ok(!proc.stderr.includes(Buffer.from(sim.caPem).toString('base64').slice(0, 40)), 'CA bytes on stderr');
    }
    assert.doesNotMatch(proc.stderr, /BEGIN CERTIFICATE|\{\{/);
    assert.equal(proc.exit, undefined, 'kubesocks kept running');
    summarize(t, {
      case: 'kubeconfig rewritten under `serve`',
      saw: `nothing failed: after a rename to another cluster the next SOCKS5 connection by name worked ${ms(renameMs)} after the rename, and went there; after an in-place rewrite to a restarted cluster (new port, CA, token) ${ms(restartMs)} after the write; garbage: one line, the old configuration kept serving`,
      lost: 'nothing: the socket open before the change kept echoing on the old connection, which took no new socket and closed after it',
      recovery: 'no restart; one line per change naming the context, server and changed fields',
    });
  });
});
