/**
 * Throws thousands of random and mutated handshakes at the proxy — random
 * bytes, truncated and bit-flipped valid handshakes, absurd lengths, huge
 * headers, slowloris — then checks that no handler threw, that every socket
 * (client and destination) is closed again, and that the proxy still works.
 *
 * Deterministic: the seed is fixed (override with KUBESOCKS_FUZZ_SEED).
 */
import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubesocksError } from '../../src/errors.js';
import type { Connected, Connector, PacInfo, ProxyTarget } from '../../src/net/connector.js';
import { RawClient, socks4aConnect, socks5ConnectDomain, startProxyFixture, u16, userPass, waitFor, type ProxyFixture } from '../helpers/proxy-fixtures.js';
import { prng } from '../helpers/prng.js';
import { startHostileBackend } from '../helpers/hostile-backend.js';

const SEED = Number(process.env['KUBESOCKS_FUZZ_SEED'] ?? 0x5eed1234);
const CASES = 3000;
const CONCURRENCY = 64;
const HANDSHAKE_TIMEOUT_MS = 250;
/** The password put in userinfo URLs; it must never be printed. */
const SECRET = 'fuzz-s3cret';

/** Responses from a backend nobody here controls: framing violations of every kind. */
const HOSTILE_RESPONSES = [
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nclose-delimited body',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nbody',
  'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\nraw bytes',
  'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ncut short',
  'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
  'HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nok',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot hex\r\n',
  `HTTP/1.1 200 OK\r\nX-Big: ${'h'.repeat(100_000)}\r\n\r\n`,
  'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  'HTTP/1.1 200 OK\r\n\r\nno framing at all, then close',
  'garbage that is not HTTP\r\n\r\n',
];


/** Dials only the fixture's servers; every other name fails at once (no DNS from a fuzzer). */
class FuzzConnector implements Connector {
  readonly streams: Socket[] = [];
  hostilePort = 0;
  constructor(private readonly ports: { echo: number; web: number }) {}

  async connect(target: ProxyTarget, signal: AbortSignal): Promise<Connected> {
    const port =
      target.host === 'echo.test' ? this.ports.echo : target.host === 'web.test' ? this.ports.web : target.host === 'hostile.test' ? this.hostilePort : undefined;
    if (port === undefined) {
      if (target.host.length % 3 === 0) {
        await sleep(3);
        throw new KubesocksError('TIMEOUT', 'fuzz: slow');
      }
      throw new KubesocksError('NOT_FOUND', `fuzz: no ${target.host}`);
    }
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    this.streams.push(socket);
    socket.on('error', () => {});
    try {
      await once(socket, 'connect', { signal });
    } catch (err) {
      socket.destroy();
      throw err;
    }
    return { stream: socket, via: 'fuzz' };
  }

  async pacInfo(): Promise<PacInfo> {
    return { clusterDomain: 'cluster.local', namespaces: ['demo'] };
  }
}

describe('fuzzing the listener', () => {
  let f: ProxyFixture<FuzzConnector>;
  const random = prng(SEED);
  const int = (n: number): number => Math.floor(random() * n);
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;

  let hostile: { port: number; requests: string[]; close(): Promise<void> };
  before(async () => {
    f = await startProxyFixture({ handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS, maxHeaderBytes: 8 * 1024 }, (ports) => new FuzzConnector(ports));
    hostile = await startHostileBackend({ bytes: () => pick(HOSTILE_RESPONSES), after: () => pick(['close', 'hold'] as const) });
    f.connector.hostilePort = hostile.port;
  });
  after(async () => {
    await f.close();
    await hostile.close();
  });

  function validHandshakes(): Buffer[] {
    const name = pick(['echo.test', 'web.test', 'nope.test', 'x', 'a.b.c.d.e.f', 'ECHO.TEST.']);
    return [
      Buffer.concat([Buffer.from([0x05, 0x01, 0x00]), socks5ConnectDomain(name, 7), Buffer.from('payload')]),
      Buffer.concat([Buffer.from([0x05, 0x02, 0x00, 0x02]), userPass('user', 'pass'), socks5ConnectDomain(name, 80)]),
      Buffer.concat([Buffer.from([0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x01, 127, 0, 0, 1]), u16(f.echo.port)]),
      Buffer.concat([Buffer.from([0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x04]), Buffer.alloc(15), Buffer.from([1]), u16(1)]),
      Buffer.concat([Buffer.from([0x04, 0x01]), u16(f.echo.port), Buffer.from([127, 0, 0, 1]), Buffer.from('id\0')]),
      socks4aConnect(name, 7, 'someone'),
      Buffer.from(`CONNECT ${name}:7 HTTP/1.1\r\nHost: ${name}:7\r\n\r\nhello`),
      Buffer.from(`GET http://${name}/ HTTP/1.1\r\nHost: ${name}\r\nConnection: keep-alive\r\n\r\n`),
      Buffer.from(`POST http://${name}/p HTTP/1.1\r\nHost: ${name}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`),
      Buffer.from('GET /proxy.pac HTTP/1.1\r\nHost: localhost\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n'),
      // Pipelined floods, to the proxy's pages and through it.
      Buffer.from(`GET http://${name}/ HTTP/1.1\r\nHost: ${name}\r\n\r\n`.repeat(50 + int(300))),
      Buffer.from('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'.repeat(100 + int(400))),
      // Transfer codings the proxy cannot frame.
      Buffer.from(`POST http://${name}/p HTTP/1.1\r\nHost: ${name}\r\nTransfer-Encoding: ${pick(['xchunked', 'gzip', 'chunked, gzip', 'identity', 'chunked;x=1'])}\r\n\r\n5\r\nhello\r\n0\r\n\r\n`),
      // Userinfo in URLs and CONNECT targets.
      Buffer.from(`GET http://user:${SECRET}@${name}/ HTTP/1.1\r\nHost: ${name}\r\n\r\n`),
      Buffer.from(`CONNECT user:${SECRET}@${name}:80 HTTP/1.1\r\n\r\n`),
      // Through the proxy to a backend that breaks HTTP framing, pipelined.
      Buffer.from(`GET http://hostile.test/ HTTP/1.1\r\nHost: h\r\n\r\nGET http://web.test/ HTTP/1.1\r\nHost: w\r\n\r\n`.repeat(1 + int(3))),
    ];
  }

  /** One fuzz input: a list of writes (split at random) to make in order. */
  function fuzzCase(): Buffer[] {
    const valid = pick(validHandshakes());
    let data: Buffer;
    switch (int(9)) {
      case 0: // random bytes behind each protocol's first byte
        data = Buffer.concat([Buffer.from([pick([0x04, 0x05, 0x47, 0x43, int(256)])]), bytes(int(400))]);
        break;
      case 1: // truncated valid handshake
        data = valid.subarray(0, int(valid.length));
        break;
      case 2: {
        // a few bytes flipped
        data = Buffer.from(valid);
        for (let i = 0, n = 1 + int(4); i < n; i++) data[int(data.length)] = int(256);
        break;
      }
      case 3: {
        // random bytes inserted
        const at = int(valid.length);
        data = Buffer.concat([valid.subarray(0, at), bytes(1 + int(20)), valid.subarray(at)]);
        break;
      }
      case 4: // absurd length fields and maximal counts
        data = pick([
          Buffer.concat([Buffer.from([0x05, 0xff]), bytes(255), Buffer.from([0x05, 0x01, 0x00, 0x03, 0xff]), bytes(257)]),
          Buffer.concat([Buffer.from([0x05, 0x01, 0x02, 0x01, 0xff]), bytes(255), Buffer.from([0xff]), bytes(255)]),
          Buffer.concat([Buffer.from([0x04, 0x01, 0x00, 0x50, 0, 0, 0, 9]), Buffer.alloc(2000, 0x41)]),
          Buffer.concat([Buffer.from([0x04, 0x01, 0x00, 0x50, 0, 0, 0, 9, 0]), Buffer.alloc(2000, 0x61)]),
        ]);
        break;
      case 5: // huge header
        data = Buffer.from(`GET http://web.test/ HTTP/1.1\r\nX-Big: ${'b'.repeat(10_000 + int(30_000))}\r\n\r\n`);
        break;
      case 6: // two handshakes back to back
        data = Buffer.concat([valid, pick(validHandshakes())]);
        break;
      case 7: // a valid handshake, untouched
        data = valid;
        break;
      default: // pure noise
        data = bytes(1 + int(200));
    }
    // Split into 1 to 6 writes at random points.
    const cuts = Array.from({ length: int(6) }, () => int(data.length)).sort((a, b) => a - b);
    const parts: Buffer[] = [];
    let prev = 0;
    for (const cut of [...cuts, data.length]) {
      if (cut > prev) parts.push(data.subarray(prev, cut));
      prev = cut;
    }
    return parts;
  }

  /** How one fuzz client behaves; drawn up front so a seed always means the same inputs. */
  interface Plan {
    parts: Buffer[];
    /** Pause a millisecond after each write? */
    pauses: boolean[];
    allowHalfOpen: boolean;
    /** Send FIN after the last write. */
    halfClose: boolean;
    /** Reset (RST) instead of closing politely at the end. */
    reset: boolean;
    /** How long to wait for the proxy's answer before leaving. */
    waitMs: number;
  }

  function plan(): Plan {
    const parts = fuzzCase();
    return {
      parts,
      pauses: parts.map(() => int(3) === 0),
      allowHalfOpen: int(2) === 0,
      halfClose: int(4) === 0,
      reset: int(8) === 0,
      waitMs: 5 + int(30),
    };
  }

  async function run(p: Plan): Promise<void> {
    const socket = connect({ host: '127.0.0.1', port: f.port, allowHalfOpen: p.allowHalfOpen });
    socket.on('error', () => {});
    socket.on('data', () => {});
    try {
      await once(socket, 'connect');
      for (const [i, part] of p.parts.entries()) {
        if (socket.destroyed) break;
        socket.write(part);
        if (p.pauses[i]) await sleep(1);
      }
      if (p.halfClose) socket.end();
      await Promise.race([once(socket, 'close'), sleep(p.waitMs)]);
    } catch {
      // Refused or reset: the proxy decides, the checks come at the end.
    } finally {
      if (p.reset) socket.resetAndDestroy();
      else socket.destroy();
    }
  }

  test(`${CASES} random and mutated handshakes (seed ${SEED})`, async () => {
    const cases = Array.from({ length: CASES }, () => plan());
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < cases.length) {
          const p = cases[next++];
          if (p) await run(p);
        }
      }),
    );
    // The kernel's accept queue (4096) holds connections the proxy has not
    // accepted yet when the clients are done: on a loaded machine the proxy
    // catches up later.
    await waitFor(
      () => f.proxy.stats().accepted >= CASES * 0.98 && f.proxy.stats().openSockets === 0 && f.proxy.stats().waiting === 0,
      `every client accepted and closed again (now ${JSON.stringify(f.proxy.stats())})`,
      60_000,
    );
    const stats = f.proxy.stats();
    assert.equal(stats.handshakes, 0);
    // A client that resets right after connecting can be gone before Node's
    // accept() runs (ECONNABORTED is skipped silently), which a loaded machine
    // makes likelier: nearly all, not all, reach the proxy.
    assert.ok(stats.accepted >= CASES * 0.98, `accepted ${stats.accepted}`);
    assert.deepEqual(f.errors.map((e) => `${e.code}: ${e.message}`), [], 'no handler threw');
    await waitFor(() => f.connector.streams.every((s) => s.destroyed), 'every destination stream closed', 5000);
    assert.ok(f.records.some((r) => r.error === undefined && r.via === 'fuzz'), 'some inputs got through');
    assert.ok(f.records.some((r) => r.error?.code === 'PROTOCOL_ERROR'));
    // Userinfo from the URLs never reaches a record or an error.
    const leaked = [...f.records.map((r) => JSON.stringify(r)), ...f.errors.map((e) => e.message)].filter((line) => line.includes(`${SECRET}@`));
    assert.deepEqual(leaked, [], 'userinfo printed');
    assert.ok(hostile.requests.length > 0, 'the hostile backend was reached');
  });

  test('slowloris: clients that trickle a handshake are cut off at the deadline', async () => {
    const before = f.proxy.stats().handshakeTimeouts;
    const trickles = [
      'GET http://web.test/ HTTP/1.1\r\n' + 'X-Slow: 1\r\n'.repeat(50),
      'CONNECT web.test:80 HTTP/1.1\r\n' + 'X: y\r\n'.repeat(50),
      '\x05\x08\x00\x01\x02\x03\x04\x05\x06',
      '\x04\x01\x00\x50\x00\x00\x00\x01' + 'u'.repeat(200),
    ];
    const clients = await Promise.all(Array.from({ length: 40 }, () => RawClient.connect(f.port)));
    const start = Date.now();
    let stop = false;
    const feeding = clients.map(async (c, i) => {
      const text = Buffer.from(trickles[i % trickles.length] ?? '', 'latin1');
      for (let k = 0; k < text.length && !stop && !c.ended && !c.closed; k++) {
        c.write(text.subarray(k, k + 1));
        await sleep(20);
      }
    });
    await Promise.all(clients.map((c) => c.waitClosed(HANDSHAKE_TIMEOUT_MS * 8)));
    stop = true;
    await Promise.all(feeding);
    const elapsed = Date.now() - start;
    assert.ok(elapsed >= HANDSHAKE_TIMEOUT_MS - 20, `closed after ${elapsed} ms`);
    assert.equal(f.proxy.stats().handshakeTimeouts - before, 40);
    for (const c of clients) c.destroy();
    await waitFor(() => f.proxy.stats().openSockets === 0, 'sockets closed');
  });

  test('afterwards the proxy still serves SOCKS5 and HTTP', async () => {
    const c = await RawClient.connect(f.port);
    c.write(Buffer.concat([Buffer.from([0x05, 0x01, 0x00]), socks5ConnectDomain('echo.test', 7), Buffer.from('alive')]));
    assert.equal((await c.read(12 + 5)).subarray(12).toString(), 'alive');
    c.destroy();
    const h = await RawClient.connect(f.port);
    h.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    assert.match((await h.readToEnd()).toString(), /\r\n\r\nok\n$/);
    h.destroy();
    await waitFor(() => f.proxy.stats().openSockets === 0, 'sockets closed');
    assert.deepEqual(f.errors, []);
  });
});
