/**
 * A pipelined flood costs the proxy a bounded amount of memory: one raw
 * connection writes 10,000 absolute-form requests as fast as the kernel takes
 * them to a real `kubesocks serve` (a child process, against the simulated
 * cluster in this process), reads nothing for a while, then reads everything;
 * every response must arrive, in order, with its own path in the body.
 *
 * The figure is the peak RSS (VmHWM, reset before the flood) over the RSS
 * before it. Without PIPELINE_LIMIT this test measured a growth of ~420 MiB
 * (peak 555 MiB; the issue saw 220 → 528 MiB), 137 MiB of it still live after
 * a full GC. With it, ~80-130 MiB, nearly all of it garbage V8 collects
 * lazily (live heap after a full GC stays ~25 MiB): the same 10,000 requests
 * sent never more than 4 at a time grow RSS by ~80 MiB too. So the bound
 * sits between the two, well clear of both; docs/security.md quotes the figure.
 */
import * as assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { demoScenario } from '../../src/sim/scenario.js';
import { Proc, REPO_ROOT, cleanEnv } from '../helpers/e2e-procs.js';
import { startTestCluster, type TestCluster } from '../helpers/sim.js';
import { TEST_TRANSPORT_ARGS } from '../helpers/transport.js';

const REQUESTS = 10_000;
/** Generous over the ~130 MiB of per-request garbage, and under half of the unbounded proxy's ~420 MiB. */
const MAX_GROWTH_MIB = 192;
/** How long the client reads nothing while its requests are in the proxy's hands. */
const STALL_MS = 3000;

/** A field of /proc/PID/status in MiB (VmRSS: now, VmHWM: the peak since the last reset). */
function memoryMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m?.[1], `${field} missing from /proc/${pid}/status`);
  return Number(m[1]) / 1024;
}

/** Resets VmHWM to the current RSS (Linux ≥ 4.0: `5` in clear_refs), so the peak seen is this test's. */
function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/**
 * Reads pipelined HTTP/1.1 responses (Content-Length framed) off a socket,
 * each checked as it completes, without keeping what was already checked.
 */
class ResponseReader {
  readonly #socket: Socket;
  #buf: Buffer = Buffer.alloc(0);
  count = 0;
  failure: string | undefined;
  readonly #check: (index: number, status: string, body: string) => string | undefined;

  constructor(socket: Socket, check: (index: number, status: string, body: string) => string | undefined) {
    this.#socket = socket;
    this.#check = check;
    socket.on('data', (chunk: Buffer) => this.#take(chunk));
  }

  #take(chunk: Buffer): void {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    for (;;) {
      const headEnd = this.#buf.indexOf('\r\n\r\n');
      if (headEnd === -1) return;
      const head = this.#buf.subarray(0, headEnd).toString('latin1');
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? NaN);
      if (!Number.isInteger(length)) {
        this.failure ??= `response ${this.count} has no Content-Length: ${JSON.stringify(head)}`;
        this.#socket.destroy();
        return;
      }
      if (this.#buf.length < headEnd + 4 + length) return;
      const body = this.#buf.subarray(headEnd + 4, headEnd + 4 + length).toString('utf8');
      this.#buf = this.#buf.subarray(headEnd + 4 + length);
      const problem = this.#check(this.count, head.slice(0, head.indexOf('\r\n')), body);
      if (problem) {
        this.failure ??= problem;
        this.#socket.destroy();
        return;
      }
      this.count++;
    }
  }
}

let t: TestCluster;
let serve: Proc;
let port: number;

before(async () => {
  t = await startTestCluster(demoScenario());
  serve = new Proc(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '--kubeconfig', t.kubeconfig, '--listen', '127.0.0.1:0', ...TEST_TRANSPORT_ARGS], {
    cwd: REPO_ROOT,
    env: cleanEnv(),
  });
  port = Number((await serve.waitFor(/listening on 127\.0\.0\.1:(\d+)/, { stream: 'stderr', timeoutMs: 30_000 }))[1]);
});

after(async () => {
  serve?.signal('SIGTERM');
  await serve?.settle(8000);
  await t?.close();
});

/** Sends `count` pipelined GETs for /i/<n> on one new connection; resolves once every response was read and checked. */
async function pipeline(count: number, { stallMs = 0, onStalled }: { stallMs?: number; onStalled?: () => void } = {}): Promise<ResponseReader> {
  const socket = connect({ port, host: '127.0.0.1', noDelay: true });
  await once(socket, 'connect');
  socket.on('error', () => {});
  if (stallMs > 0) socket.pause();
  const reader = new ResponseReader(socket, (i, status, body) => {
    if (status !== 'HTTP/1.1 200 OK') return `response ${i}: ${status} ${body.trim()}`;
    if (!new RegExp(`^pod web-[0-2] path /i/${i}\\n$`).test(body)) return `response ${i} out of order or wrong: ${JSON.stringify(body)}`;
    return undefined;
  });
  const request = (i: number): string => `GET http://web.demo/i/${i} HTTP/1.1\r\nHost: web.demo\r\n\r\n`;
  const requests: string[] = [];
  for (let i = 0; i < count; i++) requests.push(request(i));
  socket.write(requests.join(''));
  if (stallMs > 0) {
    await new Promise((resolve) => setTimeout(resolve, stallMs));
    onStalled?.();
    socket.resume();
  }
  const deadline = Date.now() + 240_000;
  while (reader.count < count && reader.failure === undefined && !socket.destroyed && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  socket.destroy();
  return reader;
}

test(`${REQUESTS.toLocaleString('en')} pipelined requests on one connection: all answered in order, RSS grows less than ${MAX_GROWTH_MIB} MiB`, async () => {
  const pid = serve.pid;
  assert.ok(pid !== undefined);
  // Warm up: the pool's connection to the web pods, the JIT, the parser.
  const warm = await pipeline(200);
  assert.equal(warm.failure, undefined);
  assert.equal(warm.count, 200);
  await new Promise((resolve) => setTimeout(resolve, 500));

  const before = memoryMiB(pid, 'VmRSS');
  resetPeak(pid);
  let stalled = 0;
  const started = performance.now();
  const flood = await pipeline(REQUESTS, { stallMs: STALL_MS, onStalled: () => (stalled = memoryMiB(pid, 'VmRSS')) });
  const seconds = (performance.now() - started) / 1000;
  const peak = memoryMiB(pid, 'VmHWM');
  const growth = peak - before;
  console.log(
    `pipelining: ${REQUESTS} requests on one connection, client stalled ${STALL_MS / 1000} s then read all in ${seconds.toFixed(1)} s: ` +
      `kubesocks RSS ${before.toFixed(0)} MiB before, ${stalled.toFixed(0)} MiB while stalled, peak ${peak.toFixed(0)} MiB (growth ${growth.toFixed(1)} MiB)`,
  );
  assert.equal(flood.failure, undefined);
  assert.equal(flood.count, REQUESTS, `${flood.count} of ${REQUESTS} responses arrived\n${serve.output}`);
  assert.ok(growth < MAX_GROWTH_MIB, `RSS grew by ${growth.toFixed(1)} MiB (from ${before.toFixed(0)} to a peak of ${peak.toFixed(0)})`);
  assert.equal(serve.exit, undefined, 'kubesocks is still running');
});
