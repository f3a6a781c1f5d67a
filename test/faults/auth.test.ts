/**
 * Credentials failing under a running proxy: a token revoked mid-session,
 * and a token rotated behind an exec credential plugin (client.authentication.k8s.io/v1).
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import yaml from 'js-yaml';
import { KubesocksError } from '../../src/errors.js';
import type { Scenario, ScenarioPod } from '../../src/sim/types.js';
import type { TestCluster } from '../helpers/sim.js';
import { echoOnce, httpViaProxy, ms, socks5, socks5Reply, NS, readyPod, startRig, summarize, waitUntil, type Rig } from '../helpers/faults-rig.js';

function echoPod(name: string, i: number): ScenarioPod {
  return readyPod(name, `10.244.1.${10 + i}`, [
    { name: 'echo', containerPort: 7, backend: 'echo' },
    { name: 'http', containerPort: 8080, backend: 'http' },
  ]);
}

function scenario(users: Scenario['users']): Scenario {
  return {
    namespaces: [NS],
    users,
    pods: Array.from({ length: 8 }, (_, i) => echoPod(`echo-${i}`, i)),
    services: [],
  };
}

const isCode = (code: string) => (err: unknown) => {
  assert.ok(err instanceof KubesocksError, String(err));
  assert.equal(err.code, code, err.message);
  return true;
};

describe('a token revoked mid-session', () => {
  let rig: Rig;
  const TOKEN = 'alice-token-revoked-mid-session';

  before(async () => {
    rig = await startRig(scenario([{ name: 'alice', token: TOKEN }]), { kubeconfig: (t) => t.kubeconfigFor('alice') });
  });
  after(async () => {
    await rig?.close();
  });

  test('new connections fail with UNAUTHORIZED naming the context, pooled connections included; established sockets keep working until their connection ends', async (t) => {
    const established: Socket[] = await Promise.all([0, 1, 2].map(() => socks5(rig.proxyPort, `echo-0.${NS}`, 7)));
    const dialed = await rig.dialer.connect(`echo-1.${NS}:7`);
    const dialedError = new Promise<unknown>((resolve) => dialed.on('error', resolve));
    const lastOnItsConnection = await rig.dialer.connect(`echo-2.${NS}:7`);
    await echoOnce(lastOnItsConnection, 'before');
    for (const s of [...established, dialed]) await echoOnce(s, 'before');

    const revokedAt = performance.now();
    rig.cluster.revokeToken(TOKEN);

    // A pod with no pooled connection needs an upgrade: 401, one credential refresh, 401 again.
    const err = await rig.dialer.connect(`echo-5.${NS}:7`).then(
      () => assert.fail('a connect with a revoked token succeeded'),
      (e: unknown) => e as KubesocksError,
    );
    const failMs = performance.now() - revokedAt;
    isCode('UNAUTHORIZED')(err);
    assert.doesNotMatch(err.message, /\n/, 'one line');
    assert.match(err.message, /context "kubesocks-sim"/);
    assert.match(err.message, /log in again/);
    assert.ok(!err.message.includes(TOKEN), 'the token never appears in errors');
    assert.equal(await socks5Reply(rig.proxyPort, `echo-6.${NS}`, 7), 'NotAllowed');
    const res = await httpViaProxy(rig.proxyPort, `http://echo-7.${NS}:8080/`);
    assert.equal(res.status, 403);
    assert.match(res.body, /context "kubesocks-sim"/);
    assert.equal(res.body.trim().split('\n').length, 1, res.body);

    // Established sockets carry on: their SPDY connections were authenticated at upgrade.
    for (const s of [...established, dialed]) await echoOnce(s, 'after revocation');

    // A new socket to a pod whose connection is still pooled does not ride on that connection's
    // old authentication: once the API server has rejected the credentials, the pool retires its
    // connections (their sockets carry on) and a new socket needs an upgrade, which is refused.
    const upgradesBefore = rig.cluster.counters().upgrades;
    await assert.rejects(rig.dialer.connect(`echo-0.${NS}:7`), isCode('UNAUTHORIZED'));
    assert.equal(await socks5Reply(rig.proxyPort, `echo-0.${NS}`, 7), 'NotAllowed');
    assert.equal(rig.cluster.counters().upgrades, upgradesBefore, 'no upgrade succeeded');
    for (const s of [...established, dialed]) await echoOnce(s, 'still');
    // A retired connection closes once its last socket ends.
    const connectionsBefore = rig.dialer.stats().connections;
    lastOnItsConnection.destroy();
    await waitUntil(() => rig.dialer.stats().connections === connectionsBefore - 1, 'the retired connection to echo-2 to close after its last socket');

    // Their connections end (here: the API server restarts): the sockets fail, and reconnecting is refused.
    // The proxy resets them (a pod side that broke must not look like a clean end).
    const resets = established.map((s) => new Promise<string>((resolve) => s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message))));
    const ends = established.map((s) => new Promise<void>((resolve) => s.once('close', () => resolve())));
    await rig.cluster.restartApiServer();
    await Promise.all(ends);
    assert.deepEqual(await Promise.all(resets), ['ECONNRESET', 'ECONNRESET', 'ECONNRESET']);
    const lost = await dialedError;
    isCode('CONNECTION_LOST')(lost);
    await waitUntil(() => rig.dialer.stats().connections === 0, 'the pool to drop the dead connections');
    await assert.rejects(rig.dialer.connect(`echo-0.${NS}:7`), isCode('UNAUTHORIZED'));
    assert.equal(await socks5Reply(rig.proxyPort, `echo-1.${NS}`, 7), 'NotAllowed');
    dialed.destroy();
    summarize(t, {
      case: 'token revoked mid-session',
      saw: `new connections: dialer UNAUTHORIZED "${err.message}", SOCKS5 0x02, HTTP 403 (one line); also to pods whose pooled connection was authenticated before the revocation (retired once the 401 was seen)`,
      lost: 'nothing: 4/4 established sockets kept echoing until their SPDY connection ended (API server restart), then reconnecting was refused',
      recovery: `refusal known ${ms(failMs)} after the revocation (401, one credential re-read, 401)`,
    });
  });
});

/** A plugin that prints the token in `token` next to it and counts its runs in `runs`. */
const PLUGIN = `
const fs = require('node:fs');
const path = require('node:path');
fs.appendFileSync(path.join(__dirname, 'runs'), '1\\n');
const token = fs.readFileSync(path.join(__dirname, 'token'), 'utf8').trim();
process.stdout.write(JSON.stringify({
  apiVersion: 'client.authentication.k8s.io/v1',
  kind: 'ExecCredential',
  status: { token },
}));
`;

async function execKubeconfig(t: TestCluster, user: string): Promise<string> {
  const script = join(t.dir, 'credential-plugin.cjs');
  await writeFile(script, PLUGIN);
  await writeFile(join(t.dir, 'token'), t.cluster.tokenFor(user));
  await writeFile(join(t.dir, 'runs'), '');
  const config = yaml.load(t.cluster.kubeconfigYaml({ user })) as { users: Array<{ name: string; user: Record<string, unknown> }> };
  const entry = config.users[0];
  assert.ok(entry);
  entry.user = {
    exec: {
      apiVersion: 'client.authentication.k8s.io/v1',
      command: process.execPath,
      args: [script],
      interactiveMode: 'Never',
    },
  };
  const file = join(t.dir, 'kubeconfig-exec');
  await writeFile(file, yaml.dump(config), { mode: 0o600 });
  return file;
}

describe('a token refreshed by an exec credential plugin', () => {
  let rig: Rig;

  before(async () => {
    rig = await startRig(scenario([{ name: 'rotator', token: 'rotator-token-1' }]), { kubeconfig: (t) => execKubeconfig(t, 'rotator') });
  });
  after(async () => {
    await rig?.close();
  });

  const runs = async (): Promise<number> => (await readFile(join(rig.t.dir, 'runs'), 'utf8')).split('\n').filter(Boolean).length;

  test('after a rotation the next connect gets 401, kubesocks re-runs the plugin once and succeeds', async (t) => {
    const first = await socks5(rig.proxyPort, `echo-0.${NS}`, 7);
    await echoOnce(first, 'token 1');
    const runsBefore = await runs();
    assert.ok(runsBefore >= 1 && runsBefore <= 2, `the plugin ran ${runsBefore} times to start`);

    // Rotate: the new token exists, the old one is revoked, the plugin now prints the new one.
    const rotatedAt = performance.now();
    rig.cluster.addUser({ name: 'rotator', token: 'rotator-token-2' });
    rig.cluster.revokeToken('rotator-token-1');
    await writeFile(join(rig.t.dir, 'token'), 'rotator-token-2');

    // The next connect needs an upgrade (a pod not pooled yet): 401 → plugin → 101.
    const next = await rig.dialer.connect(`echo-1.${NS}:7`);
    const recoveredMs = performance.now() - rotatedAt;
    await echoOnce(next, 'token 2');
    next.destroy();
    const runsAfterOne = await runs();
    assert.equal(runsAfterOne, runsBefore + 1, 'exactly one more plugin run for the first 401');

    // A burst of new sockets to six unpooled pods, at once, through SOCKS5: no plugin storm.
    const burst = await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const s = await socks5(rig.proxyPort, `echo-${2 + (i % 6)}.${NS}`, 7);
        await echoOnce(s, `burst ${i}`);
        s.destroy();
      }),
    );
    assert.equal(burst.length, 24);
    await echoOnce(first, 'old socket still fine');
    first.destroy();
    const runsAfter = await runs();
    assert.ok(runsAfter - runsBefore <= 2, `the plugin ran ${runsAfter - runsBefore} times after the rotation`);
    summarize(t, {
      case: 'token rotated behind an exec plugin',
      saw: `nothing: the next connect succeeded (one 401 absorbed), then 24/24 concurrent SOCKS5 sockets to 6 new pods`,
      lost: 'nothing (the socket opened with the old token kept working)',
      recovery: `next connect done ${ms(recoveredMs)} after the rotation; plugin runs: ${runsBefore} at start, +${runsAfter - runsBefore} after the rotation`,
    });
  });
});
