/**
 * The kubeconfig followed while running (src/kube/kubeconfig-reload.ts,
 * kubeconfig-watch.ts): real simulated clusters over TLS, real files
 * rewritten in place and by rename, real port-forward connections through a
 * library dialer.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import yaml from 'js-yaml';
import { createDialer, type Dialer } from '../../src/dialer/dialer.js';
import type { KubeconfigEvent } from '../../src/kube/kubeconfig-reload.js';
import { FileWatcher } from '../../src/kube/kubeconfig-watch.js';
import { SimCluster } from '../../src/sim/cluster.js';
import { multiKubeconfigYaml } from '../../src/sim/kubeconfig.js';
import type { Scenario } from '../../src/sim/types.js';
import { echoOnce, waitUntil } from '../helpers/faults-rig.js';
import { TEST_TRANSPORT } from '../helpers/transport.js';

const NS = 'reload';

/** Service `web` (HTTP, answers with its pod's name) and `echo`, over one pod named after the cluster. */
function scenario(tag: string, users?: Scenario['users']): Scenario {
  return {
    namespaces: [NS],
    ...(users ? { users } : {}),
    pods: [
      {
        name: `web-${tag}-0`,
        namespace: NS,
        labels: { app: 'web' },
        ip: '10.244.1.10',
        phase: 'Running',
        ready: true,
        ports: [
          { name: 'http', containerPort: 8080, backend: 'http' },
          { name: 'echo', containerPort: 7, backend: 'echo' },
        ],
      },
    ],
    services: [
      { name: 'web', namespace: NS, selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
      { name: 'echo', namespace: NS, selector: { app: 'web' }, ports: [{ name: 'echo', port: 7, targetPort: 'echo' }] },
    ],
  };
}

/** Which pod answers `web.reload` through the dialer (a new socket each time). */
async function whoAnswers(dialer: Dialer): Promise<string> {
  const socket = await dialer.connect(`web.${NS}:80`);
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
    socket.write('GET / HTTP/1.0\r\nHost: web\r\n\r\n');
  });
}

interface Setup {
  dir: string;
  kubeconfig: string;
  events: KubeconfigEvent[];
  dialer: Dialer;
}

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

async function startSim(tag: string, users?: Scenario['users']): Promise<SimCluster> {
  const sim = await SimCluster.start({ scenario: scenario(tag, users), ownCa: true });
  cleanups.push(() => sim.close());
  return sim;
}

async function setUp(sim: SimCluster, options: { watchKubeconfig?: boolean; text?: string; beside?: Record<string, string> } = {}): Promise<Setup> {
  const dir = await mkdtemp(join(tmpdir(), 'kubesocks-reload-'));
  for (const [name, content] of Object.entries(options.beside ?? {})) await writeFile(join(dir, name), content, { mode: 0o600 });
  const kubeconfig = join(dir, 'config');
  await writeFile(kubeconfig, options.text ?? sim.kubeconfigYaml({ namespace: NS }), { mode: 0o600 });
  const events: KubeconfigEvent[] = [];
  const dialer = await createDialer({
    kubeconfig,
    transport: TEST_TRANSPORT,
    onKubeconfigEvent: (e) => events.push(e),
    ...(options.watchKubeconfig !== undefined ? { watchKubeconfig: options.watchKubeconfig } : {}),
  });
  cleanups.push(async () => {
    await dialer.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, kubeconfig, events, dialer };
}

/** Writes `text` to a temporary file beside `file` and renames it over `file`, as editors and kubectl do. */
async function replaceByRename(file: string, text: string): Promise<void> {
  const temp = `${file}.tmp-${process.pid}`;
  await writeFile(temp, text, { mode: 0o600 });
  await rename(temp, file);
}

const changedEvents = (events: KubeconfigEvent[]) => events.filter((e) => e.kind === 'changed');

function assertNoSecrets(events: KubeconfigEvent[], ...sims: SimCluster[]): void {
  for (const e of events) {
    assert.doesNotMatch(e.message, /\n/, 'one line');
    for (const sim of sims) {
      assert.ok(!e.message.includes(sim.adminToken), `a token in: ${e.message}`);
      assert.ok(!e.message.includes(Buffer.from(sim.caPem).toString('base64').slice(0, 40)), `CA bytes in: ${e.message}`);
      assert.ok(!e.message.includes('BEGIN CERTIFICATE'), `a certificate in: ${e.message}`);
    }
  }
}

describe('a kubeconfig rewritten to a restarted cluster', () => {
  test('written in place: the next connection reaches the new server (new port, CA and token); the change is said in one line without secrets', async () => {
    const first = await startSim('a');
    const { kubeconfig, events, dialer } = await setUp(first);
    assert.equal(await whoAnswers(dialer), 'web-a-0');

    await first.close();
    const second = await startSim('b');
    assert.notEqual(second.url, first.url);
    assert.notEqual(second.caPem, first.caPem);
    assert.notEqual(second.adminToken, first.adminToken);
    const written = performance.now();
    await writeFile(kubeconfig, second.kubeconfigYaml({ namespace: NS }));
    await waitUntil(() => changedEvents(events).length === 1, () => `a "changed" event (events: ${JSON.stringify(events)})`, 5_000);
    assert.equal(await whoAnswers(dialer), 'web-b-0');
    const tookMs = performance.now() - written;
    assert.ok(tookMs < 5_000, `took ${tookMs} ms`);

    const [changed] = changedEvents(events);
    assert.ok(changed?.kind === 'changed');
    assert.equal(changed.context, 'kubesocks-sim');
    assert.equal(changed.server, second.url);
    assert.deepEqual(changed.changed, ['server', 'certificate-authority', 'token']);
    assert.match(changed.message, new RegExp(`^kubeconfig changed: context kubesocks-sim now uses server ${second.url.replace(/\./g, '\\.')} \\(re-read from ${kubeconfig.replace(/[.]/g, '\\.')}; changed: server, certificate-authority, token\\)$`));
    assertNoSecrets(events, first, second);
    assert.deepEqual(dialer.contexts().map((c) => c.cluster), [second.url], 'the context now shows the new server');
  });

  test('replaced by rename while the old cluster still runs: a socket on the old connection finishes there, new sockets never ride it, and it closes after its last socket', async () => {
    const first = await startSim('a');
    const second = await startSim('b');
    const { kubeconfig, events, dialer } = await setUp(first);
    const old = await dialer.connect(`echo.${NS}:7`);
    await echoOnce(old, 'before');
    assert.equal(dialer.stats().connections, 1);
    const firstUpgrades = first.counters().upgrades;

    await replaceByRename(kubeconfig, second.kubeconfigYaml({ namespace: NS }));
    await waitUntil(() => changedEvents(events).length === 1, () => `a "changed" event (events: ${JSON.stringify(events)})`, 5_000);

    // The old socket carries on over the connection made with the old configuration.
    await echoOnce(old, 'after the change');
    const sockets: Duplex[] = [];
    for (let i = 0; i < 3; i++) {
      const socket = await dialer.connect(`echo.${NS}:7`);
      sockets.push(socket);
      await echoOnce(socket, `new ${i}`);
    }
    assert.equal(await whoAnswers(dialer), 'web-b-0');
    assert.equal(first.counters().upgrades, firstUpgrades, 'no upgrade to the old cluster');
    assert.equal(first.counters().pairs, 1, 'no new socket on the old connection');
    assert.equal(second.counters().pairs, 4, 'every new socket went to the new cluster');
    assert.equal(dialer.stats().connections, 2);
    await echoOnce(old, 'still');

    // The retired connection closes once its last socket ends; the new one stays pooled.
    old.destroy();
    await waitUntil(() => dialer.stats().connections === 1, 'the retired connection to close after its last socket');
    await waitUntil(() => first.counters().openConnections === 0, 'the old cluster to see its connection closed');
    for (const s of sockets) await echoOnce(s, 'unaffected');
    for (const s of sockets) s.destroy();
    assertNoSecrets(events, first, second);
  });
});

describe('a kubeconfig that cannot be used as written', () => {
  test('half-written, garbage, missing: the old configuration keeps working, each problem said once in one line without the token; the same content back is no change', async () => {
    const sim = await startSim('a');
    const { kubeconfig, events, dialer } = await setUp(sim);
    const good = sim.kubeconfigYaml({ namespace: NS });
    assert.equal(await whoAnswers(dialer), 'web-a-0');

    // Cut in the middle of the users list, then junk: not YAML any more. The token is in the text.
    const cut = good.slice(0, good.indexOf('contexts:'));
    assert.ok(cut.includes(sim.adminToken));
    const garbage = `${cut}  - : [ {{ "${sim.adminToken}\n\t: :\n`;
    await writeFile(kubeconfig, garbage);
    await waitUntil(() => events.length >= 1, 'an event about the broken file', 5_000);
    await writeFile(kubeconfig, garbage);
    await sleep(800);
    assert.equal(events.length, 1, `one line for the same problem: ${JSON.stringify(events)}`);
    const [broken] = events;
    assert.equal(broken?.kind, 'unreadable');
    assert.match(broken?.message ?? '', new RegExp(`^kubeconfig ${kubeconfig.replace(/\./g, '\\.')} cannot be read now \\(.+\\); the previous configuration stays in use$`));
    assert.equal(await whoAnswers(dialer), 'web-a-0');

    // Valid YAML that lost the context (written half-way): the context keeps its configuration.
    await writeFile(kubeconfig, cut);
    await waitUntil(() => events.length >= 2, 'an event about the missing context', 5_000);
    assert.equal(events[1]?.kind, 'context-unusable');
    assert.match(events[1]?.message ?? '', /context "kubesocks-sim" cannot be used as written now \(context "kubesocks-sim" not found in kubeconfig .*\); it keeps its previous configuration \(server https:\/\/127\.0\.0\.1:\d+\)$/);
    assert.equal(await whoAnswers(dialer), 'web-a-0');

    // Gone for a moment (removed before being written again).
    await unlink(kubeconfig);
    await waitUntil(() => events.length >= 3, 'an event about the missing file', 5_000);
    assert.equal(events[2]?.kind, 'unreadable');
    assert.match(events[2]?.message ?? '', /does not exist\); the previous configuration stays in use$/);
    assert.equal(await whoAnswers(dialer), 'web-a-0');

    // The same configuration again: nothing to change, nothing said, the pooled connection stays.
    const upgrades = sim.counters().upgrades;
    await writeFile(kubeconfig, good);
    await sleep(800);
    assert.equal(events.length, 3, JSON.stringify(events.slice(3)));
    assert.equal(await whoAnswers(dialer), 'web-a-0');
    assert.equal(sim.counters().upgrades, upgrades, 'no new upgrade: the pooled connection was kept');
    assertNoSecrets(events, sim);
    for (const e of events) assert.ok(!e.message.includes('{{'), `file content in: ${e.message}`);
  });

  test('a context chosen at start stays chosen: a new current-context or another context edited changes nothing', async () => {
    const sim = await startSim('a');
    const other = await startSim('b');
    const { kubeconfig, events, dialer } = await setUp(sim);
    const doc = yaml.load(sim.kubeconfigYaml({ namespace: NS })) as { contexts: unknown[]; clusters: unknown[]; users: unknown[]; 'current-context': string };
    const second = yaml.load(other.kubeconfigYaml({ namespace: NS, contextName: 'elsewhere' })) as typeof doc;
    doc.clusters.push(...second.clusters);
    doc.users.push({ name: 'elsewhere-admin', user: { token: other.adminToken } });
    doc.contexts.push({ name: 'elsewhere', context: { cluster: 'elsewhere', user: 'elsewhere-admin', namespace: NS } });
    doc['current-context'] = 'elsewhere';
    await replaceByRename(kubeconfig, yaml.dump(doc));
    await sleep(800);
    assert.deepEqual(events, []);
    assert.equal(await whoAnswers(dialer), 'web-a-0');
  });
});

describe('several contexts served', () => {
  test('each followed on its own: the one whose cluster changed is reconfigured and says so; the other keeps its pooled connection', async () => {
    const one = await startSim('one');
    const two = await startSim('two');
    const three = await startSim('three');
    const dir = await mkdtemp(join(tmpdir(), 'kubesocks-reload-contexts-'));
    const kubeconfig = join(dir, 'config');
    const entries = (second: SimCluster) => [
      { ...one.kubeconfigEntry({ namespace: NS, contextName: 'one' }) },
      { ...second.kubeconfigEntry({ namespace: NS, contextName: 'two' }) },
    ];
    await writeFile(kubeconfig, multiKubeconfigYaml(entries(two)), { mode: 0o600 });
    const events: KubeconfigEvent[] = [];
    const dialer = await createDialer({ kubeconfig, contexts: ['one', { context: 'two', alias: 'second' }], transport: TEST_TRANSPORT, onKubeconfigEvent: (e) => events.push(e) });
    cleanups.push(async () => {
      await dialer.close();
      await rm(dir, { recursive: true, force: true });
    });
    const ask = async (host: string): Promise<string> => {
      const socket = await dialer.connect(`${host}:7`);
      await echoOnce(socket, 'x');
      socket.destroy();
      return socket.via;
    };
    assert.match(await ask(`echo.${NS}`), /web-one-0/);
    assert.match(await ask(`echo.${NS}.second`), /web-two-0/);
    const oneUpgrades = one.counters().upgrades;

    await replaceByRename(kubeconfig, multiKubeconfigYaml(entries(three)));
    await waitUntil(() => changedEvents(events).length === 1, () => `a "changed" event (events: ${JSON.stringify(events)})`, 5_000);
    await sleep(300);
    assert.equal(events.length, 1, JSON.stringify(events));
    assert.match(events[0]?.message ?? '', /^kubeconfig changed: context two now uses server /);
    assert.match(await ask(`echo.${NS}.second`), /web-three-0/);
    assert.match(await ask(`echo.${NS}`), /web-one-0/);
    assert.equal(one.counters().upgrades, oneUpgrades, 'the unchanged context kept its pooled connection');
    assert.deepEqual(
      dialer.contexts().map((c) => [c.alias, c.cluster]),
      [
        ['one', one.url],
        ['second', three.url],
      ],
    );
  });
});

describe('files the kubeconfig refers to', () => {
  test('a token file rewritten (as a credential helper does) counts as a change: the new token is used, the line names the field, never the token', async () => {
    const TOKEN_ONE = 'first-token-0123456789abcdef';
    const TOKEN_TWO = 'second-token-fedcba9876543210';
    const sim = await startSim('a', [
      { name: 'one', token: TOKEN_ONE },
      { name: 'two', token: TOKEN_TWO },
    ]);
    const doc = yaml.load(sim.kubeconfigYaml({ namespace: NS, user: 'one' })) as { users: Array<{ user: Record<string, unknown> }> };
    for (const u of doc.users) {
      delete u.user.token;
      u.user.tokenFile = 'token';
    }
    const { dir, events, dialer } = await setUp(sim, { text: yaml.dump(doc), beside: { token: TOKEN_ONE } });
    assert.equal(await whoAnswers(dialer), 'web-a-0');
    const tokenFile = join(dir, 'token');
    sim.revokeToken(TOKEN_ONE);
    await replaceByRename(tokenFile, TOKEN_TWO);
    await waitUntil(() => changedEvents(events).length === 1, () => `a "changed" event (events: ${JSON.stringify(events)})`, 5_000);
    const [changed] = changedEvents(events);
    assert.ok(changed?.kind === 'changed');
    assert.deepEqual(changed.changed, ['token']);
    assert.match(changed.message, new RegExp(`re-read from .+ after a change to ${tokenFile.replace(/\./g, '\\.')}; changed: token\\)$`));
    assert.ok(!changed.message.includes(TOKEN_ONE) && !changed.message.includes(TOKEN_TWO));
    assert.equal(await whoAnswers(dialer), 'web-a-0');
  });
});

describe('a listener that throws', () => {
  test('onKubeconfigEvent throwing neither crashes the process nor stops the change', async () => {
    const first = await startSim('a');
    const second = await startSim('b');
    const dir = await mkdtemp(join(tmpdir(), 'kubesocks-reload-throw-'));
    const kubeconfig = join(dir, 'config');
    await writeFile(kubeconfig, first.kubeconfigYaml({ namespace: NS }), { mode: 0o600 });
    let told = 0;
    const dialer = await createDialer({
      kubeconfig,
      transport: TEST_TRANSPORT,
      onKubeconfigEvent: () => {
        told++;
        throw new Error('a listener bug');
      },
    });
    cleanups.push(async () => {
      await dialer.close();
      await rm(dir, { recursive: true, force: true });
    });
    await writeFile(kubeconfig, second.kubeconfigYaml({ namespace: NS }));
    await waitUntil(() => told === 1, 'the listener to be called', 5_000);
    assert.equal(await whoAnswers(dialer), 'web-b-0');
  });
});

describe('without watchKubeconfig', () => {
  test('watchKubeconfig: false leaves the configuration as loaded', async () => {
    const first = await startSim('a');
    const second = await startSim('b');
    const { kubeconfig, events, dialer } = await setUp(first, { watchKubeconfig: false });
    await writeFile(kubeconfig, second.kubeconfigYaml({ namespace: NS }));
    await sleep(800);
    assert.deepEqual(events, []);
    assert.equal(await whoAnswers(dialer), 'web-a-0');
  });
});

describe('FileWatcher', () => {
  test('sees writes in place, replacement by rename, removal and re-creation, and a swapped symlink; a burst of events is one call; close() stops it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kubesocks-watch-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'config');
    const unrelated = join(dir, 'other');
    await writeFile(file, 'one');
    const calls: string[][] = [];
    const watcher = new FileWatcher([file], (files) => calls.push(files), { debounceMs: 100 });
    cleanups.push(async () => watcher.close());
    const nextCall = async (what: string): Promise<string[]> => {
      const before = calls.length;
      await waitUntil(() => calls.length > before, what, 5_000);
      await sleep(300);
      assert.equal(calls.length, before + 1, `one call for ${what}: ${JSON.stringify(calls.slice(before))}`);
      return calls[before] ?? [];
    };

    let seen = nextCall('a write in place');
    for (let i = 0; i < 5; i++) await writeFile(file, `write ${i}`);
    assert.deepEqual(await seen, [file]);

    seen = nextCall('a replacement by rename');
    await replaceByRename(file, 'renamed');
    assert.deepEqual(await seen, [file]);

    // Twice: a rename must not leave the watch on the replaced inode.
    seen = nextCall('a second replacement by rename');
    await replaceByRename(file, 'renamed again');
    assert.deepEqual(await seen, [file]);

    await writeFile(unrelated, 'x');
    await sleep(400);
    const count = calls.length;

    seen = nextCall('removal and re-creation');
    await unlink(file);
    await writeFile(file, 'back');
    assert.deepEqual(await seen, [file]);

    // A symlink whose target is swapped (a dotfiles repository, a ConfigMap's ..data).
    const a = join(dir, 'target-a');
    const b = join(dir, 'target-b');
    await writeFile(a, 'a');
    await writeFile(b, 'b');
    const link = join(dir, 'link');
    await symlink(a, link);
    const linkCalls: string[][] = [];
    const linkWatcher = new FileWatcher([link], (files) => linkCalls.push(files), { debounceMs: 100 });
    cleanups.push(async () => linkWatcher.close());
    await writeFile(a, 'a changed');
    await waitUntil(() => linkCalls.length === 1, 'a change to the link target', 5_000);
    await symlink(b, `${link}.new`);
    await rename(`${link}.new`, link);
    await waitUntil(() => linkCalls.length === 2, 'the link swapped', 5_000);
    await writeFile(b, 'b changed');
    await waitUntil(() => linkCalls.length === 3, 'a change to the new target', 5_000);
    await writeFile(a, 'the old target changed');
    await sleep(400);
    assert.equal(linkCalls.length, 3, 'the old target no longer matters');

    assert.ok(calls.length >= count);

    // The whole folder removed and made again (rm -rf ~/.kube): seen by polling, within a few seconds.
    const folder = join(dir, 'kube');
    await mkdir(folder);
    const inFolder = join(folder, 'config');
    await writeFile(inFolder, 'one');
    const folderCalls: string[][] = [];
    const folderWatcher = new FileWatcher([inFolder], (files) => folderCalls.push(files), { debounceMs: 100 });
    cleanups.push(async () => folderWatcher.close());
    await rm(folder, { recursive: true });
    await waitUntil(() => folderCalls.length >= 1, 'the folder removed', 5_000);
    const afterRemoval = folderCalls.length;
    await mkdir(folder);
    await writeFile(inFolder, 'back again');
    await waitUntil(() => folderCalls.length > afterRemoval, 'the file written again in a new folder', 10_000);
    folderWatcher.close();

    watcher.close();
    const closedAt = calls.length;
    await writeFile(file, 'after close');
    await sleep(400);
    assert.equal(calls.length, closedAt, 'nothing after close()');
  });
});
