/**
 * A stream that fails midway never ends cleanly: whatever broke it, a SOCKS5
 * client sees a reset (ECONNRESET), never a FIN it could take for the end of
 * its data; an HTTP absolute-form response cut short resets its connection,
 * which is never reused for the next request. One case per failure path,
 * under each runtime profile where the runtime takes part.
 */
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { RUNTIME_PROFILES } from '../../src/sim/runtime-profile.js';
import type { Scenario } from '../../src/sim/types.js';
import { download, mib, ms, socks5, NS, readyPod, startRig, summarize, type Download, type Rig } from '../helpers/faults-rig.js';

const SIZE = 256 * 1024 * 1024;
const CUT_AFTER = 2 * 1024 * 1024;

function scenario(runtime: string, httpBackend?: number): Scenario {
  return {
    runtime: runtime as Scenario['runtime'],
    namespaces: [NS],
    pods: [
      readyPod('bulk-0', '10.244.1.10', [
        { name: 'bytes', containerPort: 9000, backend: 'source' },
        ...(httpBackend ? [{ name: 'http', containerPort: 8080, backend: `127.0.0.1:${httpBackend}` }] : []),
      ]),
    ],
    services: [],
  };
}

/** A SOCKS5 download from bulk-0 that has received CUT_AFTER bytes, then paced slowly so the fault lands mid-stream. */
async function midDownload(rig: Rig): Promise<{ socket: Socket; result: Promise<Download> }> {
  const socket = await socks5(rig.proxyPort, `bulk-0.${NS}`, 9000);
  let reached!: () => void;
  const midway = new Promise<void>((resolve) => (reached = resolve));
  const result = download(socket, (total) => {
    if (total >= CUT_AFTER) reached();
  });
  socket.write(`${SIZE}\n`);
  await midway;
  return { socket, result };
}

function describeEnding(d: Download): string {
  return d.error ? `${d.ending} ${(d.error as NodeJS.ErrnoException).code ?? d.error.message}` : d.ending;
}

function assertReset(d: Download, what: string): void {
  assert.ok(d.bytes < SIZE, `${what}: the download was not cut (${mib(d.bytes)})`);
  assert.equal(describeEnding(d), 'error ECONNRESET', `${what}: the client must see a reset, not a clean end`);
}

const seen: string[] = [];

for (const runtime of RUNTIME_PROFILES) {
  describe(`mid-stream failures reach the client as a reset (runtime ${runtime})`, () => {
    let rig: Rig;
    before(async () => {
      rig = await startRig(scenario(runtime), { dialer: { pool: { pingIntervalMs: 200, pingTimeoutMs: 1000 } } });
    });
    after(async () => {
      await rig?.close();
    });

    const cases: Array<[string, (rig: Rig) => void | Promise<void>]> = [
      ['the runtime writes error text after the first bytes', (r) => r.cluster.breakPortForwards(NS, 'bulk-0', 'text')],
      ['the stream is reset (RST, no text)', (r) => r.cluster.breakPortForwards(NS, 'bulk-0', 'reset')],
      ['the pod is deleted', async (r) => {
        r.cluster.deletePod(NS, 'bulk-0');
      }],
    ];
    for (const [name, fault] of cases) {
      test(name, async (t) => {
        if (name === 'the pod is deleted') await rig.cluster.replacePod(readyPod('bulk-0', '10.244.1.10', [{ name: 'bytes', containerPort: 9000, backend: 'source' }]));
        const { result } = await midDownload(rig);
        const started = performance.now();
        await fault(rig);
        const d = await result;
        const cutMs = performance.now() - started;
        assertReset(d, name);
        const logged = rig.records.filter((r) => r.error).at(-1);
        seen.push(`${name} (${runtime}): ${describeEnding(d)} after ${mib(d.bytes)} in ${ms(cutMs)}, logged ${logged?.error?.code}`);
        summarize(t, { case: `${name} (${runtime})`, saw: `ECONNRESET after ${mib(d.bytes)}, ${ms(cutMs)} after the fault; proxy log ${logged?.error?.code}`, lost: 'the cut socket only', recovery: '—' });
      });
    }
  });
}

describe('mid-stream failures of the connection, the API server and kubesocks itself', () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig(scenario('kubelet-1.32'), { dialer: { pool: { pingIntervalMs: 200, pingTimeoutMs: 1000 } } });
  });
  after(async () => {
    await rig?.close();
  });

  test('the connection is lost (kubelet side closes it)', async () => {
    const { result } = await midDownload(rig);
    rig.cluster.kubelet.close();
    const d = await result;
    assertReset(d, 'connection lost');
    seen.push(`connection lost: ${describeEnding(d)} after ${mib(d.bytes)}`);
  });

  test('keepalive: the node stops answering PINGs while kubesocks reads', async () => {
    // A paced download keeps kubesocks reading; the frozen side sends nothing more and answers no PING.
    const socket = await socks5(rig.proxyPort, `bulk-0.${NS}`, 9000);
    let midway!: () => void;
    const reached = new Promise<void>((resolve) => (midway = resolve));
    const result = download(socket, (total) => total >= CUT_AFTER && midway());
    socket.write(`${SIZE}\n`);
    await reached;
    const started = performance.now();
    rig.cluster.freezePortForwards(NS, 'bulk-0');
    const d = await result;
    const foundMs = performance.now() - started;
    assertReset(d, 'keepalive');
    const logged = rig.records.filter((r) => r.error).at(-1);
    assert.match(logged?.error?.message ?? '', /no answer to PING/);
    seen.push(`keepalive: ${describeEnding(d)} ${ms(foundMs)} after the freeze (PING timeout 1 s), logged "${logged?.error?.message}"`);
  });

  test('the API server goes away (restart) with the download running', async () => {
    const { result } = await midDownload(rig);
    await rig.cluster.restartApiServer();
    const d = await result;
    assertReset(d, 'API server restart');
    seen.push(`API server restarted: ${describeEnding(d)} after ${mib(d.bytes)}`);
  });

  test('kubesocks shuts down (proxy close with a grace period, then the dialer)', async () => {
    const own = await startRig(scenario('kubelet-1.32'));
    try {
      const { result } = await midDownload(own);
      await own.proxy.close(100);
      await own.dialer.close();
      const d = await result;
      assertReset(d, 'shutdown');
      seen.push(`shutdown: ${describeEnding(d)} after ${mib(d.bytes)}`);
    } finally {
      await own.close();
    }
  });

  test('kubesocks shuts down as a library: dialer.close() under a running relay', async () => {
    const own = await startRig(scenario('kubelet-1.32'));
    try {
      const { result } = await midDownload(own);
      await own.dialer.close();
      const d = await result;
      assertReset(d, 'dialer close');
    } finally {
      await own.close();
    }
  });
});

describe('HTTP absolute-form: a response cut short resets the connection, which is never reused', () => {
  let rig: Rig;
  let backend: http.Server;
  before(async () => {
    // A destination that sends a large body slowly: with Content-Length, chunked, and EOF-delimited (HTTP/1.0 style).
    backend = http.createServer((req, res) => {
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const headers: http.OutgoingHttpHeaders = {};
      if (req.url === '/length') headers['Content-Length'] = String(64 * 1024 * 1024);
      if (req.url === '/eof') headers['Connection'] = 'close';
      res.writeHead(200, headers);
      if (req.url === '/eof') res.useChunkedEncodingByDefault = false;
      const timer = setInterval(() => res.write(chunk), 5);
      res.once('close', () => clearInterval(timer));
    });
    backend.on('connection', (s) => s.on('error', () => {}));
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const port = (backend.address() as { port: number }).port;
    rig = await startRig(scenario('containerd', port));
  });
  after(async () => {
    await rig?.close();
    backend.closeAllConnections();
    await new Promise((resolve) => backend.close(resolve));
  });

  for (const path of ['/length', '/chunked', '/eof']) {
    test(`${path}: the client sees the response fail, and the next request goes on a new connection`, async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const outcome = await new Promise<{ bytes: number; ending: string; socket: Socket }>((resolve) => {
          const req = http.get({ host: '127.0.0.1', port: rig.proxyPort, path: `http://bulk-0.${NS}:8080${path}`, agent }, (res) => {
            let bytes = 0;
            let broke = false;
            res.on('data', (c: Buffer) => {
              bytes += c.length;
              if (bytes >= CUT_AFTER && !broke) {
                broke = true;
                rig.cluster.breakPortForwards(NS, 'bulk-0', 'text');
              }
            });
            res.once('end', () => resolve({ bytes, ending: 'end', socket: req.socket as Socket }));
            res.once('error', (err: NodeJS.ErrnoException) => resolve({ bytes, ending: `error ${err.code ?? err.message}`, socket: req.socket as Socket }));
          });
          req.on('error', () => {});
        });
        assert.notEqual(outcome.ending, 'end', `${path}: a cut response must not end cleanly (${mib(outcome.bytes)})`);
        assert.ok(outcome.socket.destroyed, 'the cut connection is gone');
        const next = await new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
          const req = http.get({ host: '127.0.0.1', port: rig.proxyPort, path: `http://127.0.0.1:${rig.proxyPort}/healthz`, agent }, (res) => {
            res.resume();
            res.once('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket }));
          });
          req.once('error', reject);
        });
        assert.equal(next.status, 200);
        assert.equal(next.reused, false, 'the next request must not reuse the cut connection');
        seen.push(`HTTP ${path}: response ${outcome.ending} after ${mib(outcome.bytes)}; next request on a new connection`);
      } finally {
        agent.destroy();
      }
    });
  }

  test('summary', (t) => {
    summarize(t, { case: 'mid-stream failures', saw: seen.join('; '), lost: 'only the cut sockets, each told by a reset', recovery: '—' });
    assert.ok(seen.length > 0);
  });
});
