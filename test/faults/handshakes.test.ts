/**
 * Hostile and careless clients against the real proxy, dialer and simulated
 * cluster: 10,000 handshakes of random and mutated bytes, slowloris, and
 * clients vanishing mid-handshake (also while their target is being
 * connected). The process stays up, nothing throws, and the proxy's
 * counters, the pool and the process's active handles return to baseline.
 *
 * Deterministic: the seed is fixed (override with KUBESOCKS_FUZZ_SEED).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Scenario, ScenarioPod } from '../../src/sim/types.js';
import {
  activeHandles,
  activeResources,
  echoOnce,
  exchangeToEnd,
  formatResources,
  httpViaProxy,
  ms,
  socks5,
  socketHandles,
  NS,
  readyPod,
  startRig,
  summarize,
  waitUntil,
  type Rig,
} from '../helpers/faults-rig.js';
import { prng } from '../helpers/prng.js';

const SEED = Number(process.env['KUBESOCKS_FUZZ_SEED'] ?? 0x6b756265);
const CASES = 10_000;
const CONCURRENCY = 64;
const HANDSHAKE_TIMEOUT_MS = 1500;
const PODS = 12;

function scenario(): Scenario {
  const pods: ScenarioPod[] = Array.from({ length: PODS }, (_, i) =>
    readyPod(`echo-${i}`, `10.244.1.${10 + i}`, [
      { name: 'echo', containerPort: 7, backend: 'echo' },
      { name: 'http', containerPort: 8080, backend: 'http' },
    ]),
  );
  return {
    namespaces: [NS],
    pods,
    services: [
      {
        name: 'echo',
        namespace: NS,
        selector: { app: 'echo' },
        ports: [
          { name: 'echo', port: 7, targetPort: 'echo' },
          { name: 'http', port: 80, targetPort: 'http' },
        ],
      },
    ],
  };
}


const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n & 0xffff);
  return b;
};

function socks5Request(host: string, port: number): Buffer {
  const name = Buffer.from(host, 'latin1');
  return Buffer.concat([Buffer.from([0x05, 0x01, 0x00, 0x03, name.length & 0xff]), name, u16(port)]);
}

/** Active handles and proxy/pool counters, for before/after comparisons. */
interface Snapshot {
  /** Active sockets and servers in the process, less connections to the API server (its client's keep-alive pool). */
  sockets: number;
  resources: Record<string, number>;
  openSockets: number;
  handshakes: number;
  pairs: number;
  poolConnections: number;
  simConnections: number;
}

describe('hostile and careless clients', () => {
  let rig: Rig;
  let baseline: Snapshot;
  const random = prng(SEED);
  const int = (n: number): number => Math.floor(random() * n);
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;

  const snapshot = (): Snapshot => ({
    sockets: socketHandles(Number(new URL(rig.cluster.url).port)),
    resources: activeResources(),
    openSockets: rig.proxy.stats().openSockets,
    handshakes: rig.proxy.stats().handshakes,
    pairs: rig.dialer.stats().pairs,
    poolConnections: rig.dialer.stats().connections,
    simConnections: rig.cluster.counters().openConnections,
  });

  /** What each client sent, by its local port: to name the inputs behind sockets that stay open. */
  const sentBy = new Map<number, string>();

  let baselineHandles = new Set<unknown>();

  /** Handles that were not there at the baseline, described (for failure messages). */
  function newHandles(): string[] {
    const out: string[] = [];
    for (const h of activeHandles()) {
      if (baselineHandles.has(h)) continue;
      const socket = h as Partial<Socket> & { writableCorked?: number; constructor: { name: string } };
      const ports = `${socket.localPort ?? '-'}→${socket.remotePort ?? '-'}`;
      const sent = socket.localPort === rig.proxyPort && socket.remotePort !== undefined ? ` sent ${JSON.stringify(sentBy.get(socket.remotePort) ?? '?')}` : '';
      out.push(
        `${socket.constructor.name} ${ports}${sent} (destroyed ${socket.destroyed}, readableEnded ${socket.readableEnded}, writableEnded ${socket.writableEnded}, ` +
          `corked ${socket.writableCorked}, writableLength ${socket.writableLength}, readableLength ${socket.readableLength}, flowing ${socket.readableFlowing})`,
      );
    }
    return out;
  }

  /** Waits until the proxy, the pool and the process's socket handles are back to the baseline. */
  async function backToBaseline(what: string): Promise<number> {
    return waitUntil(
      () => {
        const now = snapshot();
        return (
          now.openSockets === baseline.openSockets &&
          now.handshakes === 0 &&
          now.pairs === 0 &&
          now.poolConnections === baseline.poolConnections &&
          now.simConnections === baseline.simConnections &&
          now.sockets <= baseline.sockets
        );
      },
      () => `${what}: back to baseline (now ${JSON.stringify({ ...snapshot(), resources: undefined })}, baseline ${JSON.stringify({ ...baseline, resources: undefined })})`,
      15_000,
      20,
    ).catch((err: Error) => {
      const extra = newHandles();
      const errors = rig.proxyErrors.map((e) => `${e.code}: ${e.message}`);
      throw new Error(
        `${err.message}; proxy errors (onError): ${errors.length} ${JSON.stringify([...new Set(errors)].slice(0, 5))}; ` +
          `proxy at ${rig.proxyPort}, API server ${rig.cluster.url}; ${extra.length} new active handles: ${extra.slice(0, 30).join('; ')}`,
      );
    });
  }

  before(async () => {
    rig = await startRig(scenario(), {
      proxy: { handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS },
      // Loopback only: names outside the cluster are refused, never looked up in DNS.
      dialer: { direct: 'deny' },
      maxRecords: 100,
    });
    // Warm every pod's pooled connection, its backends (started on first use) and the
    // namespace's watches, so later counts compare like with like.
    for (let i = 0; i < PODS; i++) {
      const s = await rig.dialer.connect(`echo-${i}.${NS}:7`);
      await echoOnce(s, 'warm');
      s.destroy();
      const web = await rig.dialer.connect(`echo-${i}.${NS}:8080`);
      assert.match((await exchangeToEnd(web, 'GET /warm HTTP/1.0\r\n\r\n')).toString(), /^HTTP\/1.1 200/);
    }
    assert.equal((await httpViaProxy(rig.proxyPort, `http://echo.${NS}/warm`)).status, 200);
    await waitUntil(() => rig.dialer.stats().pairs === 0 && rig.proxy.stats().openSockets === 0, 'a quiet start');
    await sleep(100);
    baseline = snapshot();
    baselineHandles = new Set(activeHandles());
  });
  after(async () => {
    await rig?.close();
  });

  function validHandshakes(): Buffer[] {
    const name = pick([`echo.${NS}`, `echo-${int(PODS)}.${NS}`, `echo.${NS}.svc.cluster.local`, `nope.${NS}`, 'x', `10.244.1.${10 + int(PODS)}`, 'a.b.c.d.e.f']);
    const port = pick([7, 80, 8080, 9]);
    return [
      Buffer.concat([Buffer.from([0x05, 0x01, 0x00]), socks5Request(name, port), Buffer.from('payload')]),
      Buffer.concat([Buffer.from([0x05, 0x02, 0x00, 0x02]), socks5Request(name, port)]),
      Buffer.concat([Buffer.from([0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x01, 10, 244, 1, 10 + int(PODS)]), u16(port)]),
      Buffer.concat([Buffer.from([0x04, 0x01]), u16(port), Buffer.from([0, 0, 0, 1]), Buffer.from('id\0'), Buffer.from(`${name}\0`)]),
      Buffer.from(`CONNECT ${name}:${port} HTTP/1.1\r\nHost: ${name}:${port}\r\n\r\nhello`),
      Buffer.from(`GET http://${name}/ HTTP/1.1\r\nHost: ${name}\r\nConnection: keep-alive\r\n\r\n`),
      Buffer.from(`POST http://${name}/p HTTP/1.1\r\nHost: ${name}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`),
      Buffer.from('GET /proxy.pac HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n'),
    ];
  }

  function fuzzInput(): Buffer {
    const valid = pick(validHandshakes());
    switch (int(8)) {
      case 0:
        return Buffer.concat([Buffer.from([pick([0x04, 0x05, 0x47, 0x43, 0x50, int(256)])]), bytes(int(300))]);
      case 1:
        return valid.subarray(0, int(valid.length));
      case 2: {
        const data = Buffer.from(valid);
        for (let i = 0, n = 1 + int(4); i < n; i++) data[int(data.length)] = int(256);
        return data;
      }
      case 3: {
        const at = int(valid.length);
        return Buffer.concat([valid.subarray(0, at), bytes(1 + int(20)), valid.subarray(at)]);
      }
      case 4:
        return pick([
          Buffer.concat([Buffer.from([0x05, 0xff]), bytes(255), Buffer.from([0x05, 0x01, 0x00, 0x03, 0xff]), bytes(257)]),
          Buffer.concat([Buffer.from([0x04, 0x01, 0x00, 0x50, 0, 0, 0, 9]), Buffer.alloc(2000, 0x41)]),
          Buffer.from(`GET http://echo.${NS}/ HTTP/1.1\r\nX-Big: ${'b'.repeat(10_000 + int(30_000))}\r\n\r\n`),
        ]);
      case 5:
        return Buffer.concat([valid, pick(validHandshakes())]);
      case 6:
        return valid;
      default:
        return bytes(1 + int(200));
    }
  }

  interface Plan {
    parts: Buffer[];
    /** fin: half-close after writing; wait: wait for the proxy (bounded), then close; vanish: reset at once. */
    ending: 'fin' | 'wait' | 'vanish';
    waitMs: number;
  }

  function plan(): Plan {
    const data = fuzzInput();
    const cuts = Array.from({ length: int(5) }, () => int(data.length)).sort((a, b) => a - b);
    const parts: Buffer[] = [];
    let prev = 0;
    for (const cut of [...cuts, data.length]) {
      if (cut > prev) parts.push(data.subarray(prev, cut));
      prev = cut;
    }
    const r = int(10);
    return { parts, ending: r < 5 ? 'fin' : r < 8 ? 'wait' : 'vanish', waitMs: 5 + int(60) };
  }

  async function run(p: Plan): Promise<void> {
    const socket = connect({ host: '127.0.0.1', port: rig.proxyPort, allowHalfOpen: true });
    socket.on('error', () => {});
    socket.on('data', () => {});
    try {
      await once(socket, 'connect');
      if (socket.localPort !== undefined) sentBy.set(socket.localPort, `${p.ending}: ${Buffer.concat(p.parts).toString('latin1').slice(0, 160)}`);
      for (const part of p.parts) {
        if (socket.destroyed) break;
        socket.write(part);
        if (p.parts.length > 1) await sleep(0);
      }
      if (p.ending === 'fin') socket.end();
      if (p.ending !== 'vanish') await Promise.race([once(socket, 'close'), sleep(p.waitMs)]);
    } catch {
      // The proxy decides; the checks come at the end.
    } finally {
      if (p.ending === 'vanish') socket.resetAndDestroy();
      else socket.destroy();
    }
  }

  test(`${CASES.toLocaleString('en')} handshakes of random and mutated bytes (seed ${SEED})`, async (t) => {
    const plans = Array.from({ length: CASES }, () => plan());
    const acceptedBefore = rig.proxy.stats().accepted;
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < plans.length) {
          const p = plans[next++];
          if (p) await run(p);
        }
      }),
    );
    const fuzzMs = performance.now() - started;
    const settleMs = await backToBaseline('after the fuzz');
    assert.ok(rig.proxy.stats().accepted - acceptedBefore >= CASES * 0.99, `accepted ${rig.proxy.stats().accepted - acceptedBefore}`);
    assert.deepEqual(rig.proxyErrors.map((e) => `${e.code}: ${e.message}`), [], 'no handler threw');
    // Still serving.
    const s = await socks5(rig.proxyPort, `echo.${NS}`, 7);
    await echoOnce(s, 'alive');
    s.destroy();
    assert.equal((await httpViaProxy(rig.proxyPort, `http://echo.${NS}/alive`)).status, 200);
    await backToBaseline('after the check');
    summarize(t, {
      case: `${CASES} random/mutated handshakes`,
      saw: `the proxy answered or closed each (${ms(fuzzMs)} at ${CONCURRENCY} in parallel); no handler threw; SOCKS5 and HTTP served afterwards`,
      lost: 'nothing',
      recovery: `proxy sockets/handshakes/pairs/pool/sim connections and socket handles at baseline ${ms(settleMs)} after the last client (${formatResources(snapshot().resources)})`,
    });
  });

  test('slowloris: 300 sockets sending one byte per second are cut at the handshake deadline; others are served meanwhile', async (t) => {
    const SLOW = 300;
    const timeoutsBefore = rig.proxy.stats().handshakeTimeouts;
    const trickles = [
      `GET http://echo.${NS}/ HTTP/1.1\r\n` + 'X-Slow: 1\r\n'.repeat(20),
      `CONNECT echo.${NS}:7 HTTP/1.1\r\n` + 'X: y\r\n'.repeat(20),
      '\x05\x08\x00\x01\x02\x03\x04\x05\x06\x07',
      '\x05\x01\x00\x05\x01\x00\x03\x20' + 'e'.repeat(32),
      '\x04\x01\x00\x50\x00\x00\x00\x01' + 'u'.repeat(200),
    ];
    const started = performance.now();
    const closedAfter: number[] = [];
    const sockets: Socket[] = [];
    const feeding = Array.from({ length: SLOW }, async (_, i) => {
      const socket = connect({ host: '127.0.0.1', port: rig.proxyPort });
      sockets.push(socket);
      socket.on('error', () => {});
      socket.on('data', () => {});
      const opened = performance.now();
      socket.once('connect', () => socket.localPort !== undefined && sentBy.set(socket.localPort, `slowloris ${i % trickles.length}`));
      const closed = once(socket, 'close').then(() => closedAfter.push(performance.now() - opened));
      await once(socket, 'connect').catch(() => {});
      const text = Buffer.from(trickles[i % trickles.length] ?? '', 'latin1');
      for (let k = 0; k < text.length && !socket.destroyed && socket.writable; k++) {
        socket.write(text.subarray(k, k + 1));
        await Promise.race([sleep(1000), closed]);
      }
      await closed;
    });
    // Meanwhile, real clients are served.
    await sleep(300);
    let servedDuring = 0;
    while (closedAfter.length < SLOW && performance.now() - started < 20_000) {
      const s = await socks5(rig.proxyPort, `echo.${NS}`, 7);
      await echoOnce(s, 'not starved');
      s.destroy();
      assert.equal((await httpViaProxy(rig.proxyPort, `http://echo.${NS}/during`)).status, 200);
      servedDuring += 2;
      await sleep(100);
    }
    await Promise.all(feeding);
    for (const s of sockets) s.destroy();
    assert.equal(rig.proxy.stats().handshakeTimeouts - timeoutsBefore, SLOW);
    const earliest = Math.min(...closedAfter);
    const latest = Math.max(...closedAfter);
    assert.ok(earliest >= HANDSHAKE_TIMEOUT_MS - 50, `a slowloris socket was closed after ${earliest} ms`);
    assert.ok(latest < HANDSHAKE_TIMEOUT_MS + 1500, `a slowloris socket lasted ${latest} ms`);
    assert.ok(servedDuring >= 4, `${servedDuring} clients served during the attack`);
    const settleMs = await backToBaseline('after slowloris');
    summarize(t, {
      case: `slowloris (${SLOW} sockets, 1 byte/s)`,
      saw: `every slow socket closed ${ms(earliest)}–${ms(latest)} after it opened (deadline ${HANDSHAKE_TIMEOUT_MS} ms); ${servedDuring} real requests served meanwhile`,
      lost: 'nothing',
      recovery: `back to baseline ${ms(settleMs)} after the last slow socket`,
    });
  });

  test('clients vanishing mid-handshake, and while their target is being connected', async (t) => {
    // Cold pods: their first connection needs an upgrade, so a client can leave during it.
    for (let i = 0; i < 8; i++) {
      rig.cluster.addPod({
        name: `cold-${i}`,
        namespace: NS,
        ip: `10.244.2.${10 + i}`,
        phase: 'Running',
        ready: true,
        ports: [{ name: 'echo', containerPort: 7, backend: 'echo' }],
      });
    }
    await waitUntil(async () => {
      const r = await rig.resolver.resolve(`cold-7.${NS}`, 7).catch(() => null);
      return r?.kind === 'cluster';
    }, 'the cold pods to be known');
    const VANISH = 2000;
    const full = (i: number): Buffer => {
      const target = i % 3 === 0 ? `cold-${i % 8}.${NS}` : `echo.${NS}`;
      switch (i % 4) {
        case 0:
          return Buffer.concat([Buffer.from([0x05, 0x01, 0x00]), socks5Request(target, 7)]);
        case 1:
          return Buffer.from(`CONNECT ${target}:7 HTTP/1.1\r\nHost: ${target}:7\r\n\r\n`);
        case 2:
          return Buffer.concat([Buffer.from([0x04, 0x01]), u16(7), Buffer.from([0, 0, 0, 1]), Buffer.from('me\0'), Buffer.from(`${target}\0`)]);
        default:
          return Buffer.from(`GET http://echo.${NS}/vanish-${i} HTTP/1.1\r\nHost: echo.${NS}\r\n\r\n`);
      }
    };
    const rand = prng(SEED ^ 0x5a5a);
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < VANISH) {
          const i = next++;
          const data = full(i);
          // Leave after a prefix of the handshake, or after all of it (within 0–40 ms: while the target is being connected).
          const cut = rand() < 0.5 ? Math.floor(rand() * data.length) : data.length;
          const socket = connect({ host: '127.0.0.1', port: rig.proxyPort });
          socket.on('error', () => {});
          try {
            await once(socket, 'connect');
            if (socket.localPort !== undefined) sentBy.set(socket.localPort, `vanish: ${data.subarray(0, Math.max(1, cut)).toString('latin1').slice(0, 120)}`);
            socket.write(data.subarray(0, Math.max(1, cut)));
            await sleep(Math.floor(rand() * 40));
          } catch {
            // refused: fine
          }
          if (rand() < 0.5) socket.resetAndDestroy();
          else socket.destroy();
        }
      }),
    );
    const vanishMs = performance.now() - started;
    // The cold pods' new pooled connections stay (an idle pool); compare against a baseline that includes them.
    const idleMs = await waitUntil(() => rig.dialer.stats().pairs === 0 && rig.proxy.stats().openSockets === 0, 'pairs and sockets to close', 15_000);
    // (Pooled connections are connections to the API server's port: socketHandles() leaves them out.)
    baseline = { ...baseline, poolConnections: rig.dialer.stats().connections, simConnections: rig.cluster.counters().openConnections };
    baselineHandles = new Set(activeHandles());
    await backToBaseline('after the vanishing clients');
    assert.deepEqual(rig.proxyErrors.map((e) => `${e.code}: ${e.message}`), [], 'no handler threw');
    const s = await socks5(rig.proxyPort, `cold-3.${NS}`, 7);
    await echoOnce(s, 'still here');
    s.destroy();
    summarize(t, {
      case: `${VANISH} clients vanishing mid-handshake / mid-connect`,
      saw: `nothing to see: they left (${ms(vanishMs)}); the proxy served the next client`,
      lost: 'nothing',
      recovery: `sockets, handshakes, pairs back to 0 and handles at baseline ${ms(idleMs)} after the last one (${rig.dialer.stats().connections} pooled connections kept idle)`,
    });
  });
});
