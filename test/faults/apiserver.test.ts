/**
 * Faults on the control-plane side: the API server restarted at the same
 * address (pooled connections idle, and sockets active), and a watch stream
 * cut while the event history is compacted (the resolver must relist and
 * never serve the pod deleted meanwhile).
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { KubesocksError } from '../../src/errors.js';
import type { Scenario, ScenarioPod } from '../../src/sim/types.js';
import { echoOnce, ms, socks5, startRig, summarize, waitUntil, type Rig } from '../helpers/faults-rig.js';

const NS = 'faults';

function echoPod(name: string, ip: string): ScenarioPod {
  return { name, namespace: NS, labels: { app: 'echo' }, ip, phase: 'Running', ready: true, ports: [{ name: 'echo', containerPort: 7, backend: 'echo' }] };
}

function scenario(): Scenario {
  return {
    namespaces: [NS],
    pods: [0, 1, 2, 3].map((i) => echoPod(`echo-${i}`, `10.244.1.${10 + i}`)),
    services: [{ name: 'echo', namespace: NS, selector: { app: 'echo' }, ports: [{ name: 'echo', port: 7, targetPort: 'echo' }] }],
  };
}

/** An echo socket through the dialer that survived a round trip. */
async function dialEcho(rig: Rig, target: string): Promise<{ via: string; ms: number; close(): void }> {
  const started = performance.now();
  const socket = await rig.dialer.connect(target);
  await echoOnce(socket, 'ping');
  const took = performance.now() - started;
  socket.destroy();
  return { via: socket.via, ms: took, close: () => socket.destroy() };
}

describe('API server faults', () => {
  let rig: Rig;

  before(async () => {
    rig = await startRig(scenario());
  });
  after(async () => {
    await rig?.close();
  });

  test('API server restarted with pooled connections idle: the next connect works', async (t) => {
    // Warm the pool: one connection per pod, then idle (no pairs).
    for (let i = 0; i < 4; i++) await dialEcho(rig, `echo.${NS}:7`);
    await waitUntil(() => rig.dialer.stats().pairs === 0, 'the warm-up sockets to close');
    assert.equal(rig.dialer.stats().connections, 4);
    const upgradesBefore = rig.dialer.stats().upgrades;

    const restartStarted = performance.now();
    await rig.cluster.restartApiServer();
    const restartMs = performance.now() - restartStarted;
    // At once, without waiting for the client to notice the dropped connections.
    const byService = await dialEcho(rig, `echo.${NS}:7`);
    const byPod = await dialEcho(rig, `echo-2.${NS}:7`);
    const socks = await socks5(rig.proxyPort, `echo.${NS}`, 7);
    await echoOnce(socks, 'via socks');
    socks.destroy();
    assert.ok(rig.dialer.stats().upgrades > upgradesBefore, 'the dropped pooled connections were replaced by new upgrades');
    summarize(t, {
      case: 'API server restart, pool idle',
      saw: `nothing: the next connects (service, pod by name, SOCKS5) all worked`,
      lost: 'nothing (no socket was open)',
      recovery: `restart took ${ms(restartMs)}; first connect after it ${ms(byService.ms)} (pod by name ${ms(byPod.ms)}), ${rig.dialer.stats().upgrades - upgradesBefore} new upgrades`,
    });
  });

  test('API server restarted with sockets active: they fail with CONNECTION_LOST, new ones work after the restart', async (t) => {
    const dialed = await Promise.all(Array.from({ length: 8 }, () => rig.dialer.connect(`echo.${NS}:7`)));
    const viaSocks: Socket[] = await Promise.all(Array.from({ length: 4 }, () => socks5(rig.proxyPort, `echo.${NS}`, 7)));
    await Promise.all([...dialed, ...viaSocks].map((s, i) => echoOnce(s, `before ${i}`)));
    const failures = dialed.map(
      (s) =>
        new Promise<unknown>((resolve) => {
          s.once('error', resolve);
          s.once('close', () => resolve(new Error('closed without an error')));
        }),
    );
    const socksEnds = viaSocks.map((s) => new Promise<string>((resolve) => {
      s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      s.once('close', () => resolve('close'));
    }));

    const restartStarted = performance.now();
    await rig.cluster.restartApiServer();
    const errors = await Promise.all(failures);
    for (const error of errors) {
      assert.ok(error instanceof KubesocksError, String(error));
      assert.equal(error.code, 'CONNECTION_LOST', error.message);
    }
    const socksSaw = [...new Set(await Promise.all(socksEnds))];
    // New sockets after the restart: measure until the first echo round trip.
    const fresh = await dialEcho(rig, `echo.${NS}:7`);
    const recoveredMs = performance.now() - restartStarted;
    for (let i = 0; i < 8; i++) await dialEcho(rig, `echo.${NS}:7`);
    const socks = await socks5(rig.proxyPort, `echo.${NS}`, 7);
    await echoOnce(socks, 'after');
    socks.destroy();
    await waitUntil(() => rig.dialer.stats().pairs === 0, 'every pair to be released');
    summarize(t, {
      case: 'API server restart, sockets active',
      saw: `8/8 dialer sockets: CONNECTION_LOST "${(errors[0] as Error).message}"; 4/4 SOCKS5 sockets: ${socksSaw.join('/')}`,
      lost: 'the open sockets (they were on the dropped connections); nothing else',
      recovery: `first new echo round trip ${ms(recoveredMs)} after the restart began (connect ${ms(fresh.ms)}); 8 more and SOCKS5 fine`,
    });
  });

  test('watch cut and history compacted: relist, and the pod deleted meanwhile is never served', async (t) => {
    const service = `echo.${NS}`;
    const candidates = async (): Promise<string[]> => {
      const r = await rig.dialer.resolver.resolve(service, 7);
      return r.kind === 'cluster' ? r.candidates.map((c) => c.pod) : [];
    };
    assert.deepEqual((await candidates()).sort(), ['echo-0', 'echo-1', 'echo-2', 'echo-3']);
    // Let the watches re-establish after the restarts above.
    await waitUntil(async () => (await candidates()).length === 4, 'the watch to be live');
    await dialEcho(rig, `echo-3.${NS}:7`); // so the pool holds a connection to the pod that goes

    const cutAt = performance.now();
    rig.cluster.cutWatches();
    rig.cluster.deletePod(NS, 'echo-3');
    rig.cluster.compactHistory(); // the DELETED event is gone: only a relist can tell
    const recordsFrom = rig.records.length;

    // Connect repeatedly through the gap, through the proxy and the dialer.
    const vias: string[] = [];
    let relistMs = -1;
    for (let i = 0; i < 40; i++) {
      const socket = await socks5(rig.proxyPort, service, 7);
      await echoOnce(socket, `gap ${i}`);
      socket.destroy();
      vias.push((await dialEcho(rig, `${service}:7`)).via);
      if (relistMs < 0 && !(await candidates()).includes('echo-3')) relistMs = performance.now() - cutAt;
    }
    if (relistMs < 0) relistMs = await waitUntil(async () => !(await candidates()).includes('echo-3'), 'the relist to drop echo-3', 10_000).then((w) => performance.now() - cutAt + 0 * w);
    await waitUntil(() => rig.records.length >= recordsFrom + 40, 'the proxy log');
    const proxyVias = rig.records.slice(recordsFrom).map((r) => r.via ?? '');
    const stale = [...vias, ...proxyVias].filter((v) => v.includes('echo-3'));
    assert.deepEqual(stale, [], 'a connection went to the deleted pod');
    // After the relist, the watch carries on: a new pod shows up through it.
    rig.cluster.addPod(echoPod('echo-4', '10.244.1.20'));
    const addMs = await waitUntil(async () => (await candidates()).includes('echo-4'), 'the new watch to deliver echo-4', 10_000, 1);
    summarize(t, {
      case: 'watch cut + history compacted',
      saw: `80/80 connections during and after the gap worked (SOCKS5 and dialer), none on the deleted echo-3`,
      lost: 'nothing',
      recovery: `relisted (echo-3 dropped) ${ms(relistMs)} after the cut; new watch delivered an added pod in ${ms(addMs)}`,
    });
  });
});
