/**
 * The simulator's built-in backends, started standalone on loopback: the
 * bytes they answer with, half-close behaviour, and the source pattern helpers.
 */
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import {
  SOURCE_BLOCK_SIZE,
  expectedSourceDigest,
  sourceBlock,
  sourceBytes,
  startBackend,
} from '../src/sim/backends.js';
import type { RunningBackend } from '../src/sim/backends.js';

const started: RunningBackend[] = [];
after(async () => {
  await Promise.all(started.map((b) => b.close()));
});

async function backend(kind: Parameters<typeof startBackend>[0], pod = 'pod-a'): Promise<RunningBackend> {
  const b = await startBackend(kind, pod);
  started.push(b);
  return b;
}

function dial(b: RunningBackend): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ ...b.address, allowHalfOpen: true });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Everything the peer sends until it ends, hashed and counted (no 1 GiB buffers). */
function drain(socket: Socket): Promise<{ bytes: number; sha256: string; text: string }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    const head: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
      if (bytes <= 4096) head.push(chunk);
    });
    socket.once('end', () => resolve({ bytes, sha256: hash.digest('hex'), text: Buffer.concat(head).toString('utf8') }));
    socket.once('error', reject);
  });
}

function httpGet(b: RunningBackend, path: string, method = 'GET', agent?: import('node:http').Agent) {
  return new Promise<{ status: number; headers: import('node:http').IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = request({ host: b.address.host, port: b.address.port, path, method, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('http backend', () => {
  test('answers with its pod name and the path, for GET, HEAD and favicon', async () => {
    const b = await backend('http', 'web-7');
    const { Agent } = await import('node:http');
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const get = await httpGet(b, '/some/path?q=1', 'GET', agent);
      assert.equal(get.status, 200);
      assert.equal(get.body, 'pod web-7 path /some/path?q=1\n');
      assert.equal(get.headers['x-pod'], 'web-7');
      assert.match(get.headers['content-type'] ?? '', /^text\/plain/);

      const head = await httpGet(b, '/x', 'HEAD', agent);
      assert.equal(head.status, 200);
      assert.equal(head.body, '');
      assert.equal(head.headers['content-length'], String(Buffer.byteLength('pod web-7 path /x\n')));

      const favicon = await httpGet(b, '/favicon.ico', 'GET', agent);
      assert.equal(favicon.status, 200);
      assert.equal(favicon.body, 'pod web-7 path /favicon.ico\n');
    } finally {
      agent.destroy();
    }
  });

  test('keeps the connection alive between requests', async () => {
    const b = await backend('http', 'web-8');
    const socket = await dial(b);
    const replies: string[] = [];
    let buffered = '';
    socket.on('data', (c: Buffer) => {
      buffered += c.toString('latin1');
      for (;;) {
        const end = buffered.indexOf('\n', buffered.indexOf('\r\n\r\n') + 4);
        if (buffered.indexOf('\r\n\r\n') === -1 || end === -1) break;
        replies.push(buffered.slice(0, end + 1));
        buffered = buffered.slice(end + 1);
      }
    });
    socket.write('GET /one HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitUntil(() => replies.length === 1);
    socket.write('GET /two HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitUntil(() => replies.length === 2);
    assert.match(replies[0] ?? '', /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\npod web-8 path \/one\n$/);
    assert.match(replies[1] ?? '', /pod web-8 path \/two\n$/);
    socket.destroy();
  });
});

describe('echo backend', () => {
  test('echoes bytes and ends after the client half-closes', async () => {
    const b = await backend('echo');
    const socket = await dial(b);
    const received = drain(socket);
    const payload = Buffer.alloc(3 * 1024 * 1024, 7);
    payload.write('hello', 0);
    socket.end(payload);
    const got = await received;
    assert.equal(got.bytes, payload.length);
    assert.equal(got.sha256, createHash('sha256').update(payload).digest('hex'));
    socket.destroy();
  });

  test('keeps echoing while the client has not half-closed', async () => {
    const b = await backend('echo');
    const socket = await dial(b);
    socket.write('ping');
    const first = await new Promise<Buffer>((resolve) => socket.once('data', resolve));
    assert.equal(first.toString(), 'ping');
    socket.destroy();
  });
});

describe('source backend', () => {
  test('writes exactly COUNT bytes of the pattern and ends', async () => {
    const b = await backend('source');
    for (const n of [0, 1, 1000, SOURCE_BLOCK_SIZE, SOURCE_BLOCK_SIZE * 16 + 17, 5_000_000]) {
      const socket = await dial(b);
      const received = drain(socket);
      socket.write(`${n}\n`);
      const got = await received;
      assert.equal(got.bytes, n, `count ${n}`);
      assert.equal(got.sha256, expectedSourceDigest(n), `digest for ${n}`);
      socket.destroy();
    }
  });

  test('pattern helpers agree with each other', () => {
    const b = sourceBlock();
    assert.equal(b.length, SOURCE_BLOCK_SIZE);
    const n = SOURCE_BLOCK_SIZE * 2 + 123;
    assert.equal(createHash('sha256').update(sourceBytes(0, n)).digest('hex'), expectedSourceDigest(n));
    assert.deepEqual(sourceBytes(SOURCE_BLOCK_SIZE - 2, 4), Buffer.concat([b.subarray(SOURCE_BLOCK_SIZE - 2), b.subarray(0, 2)]));
  });

  test('a count split over several writes, with CRLF, still works', async () => {
    const b = await backend('source');
    const socket = await dial(b);
    const received = drain(socket);
    socket.write('12');
    await new Promise((r) => setTimeout(r, 20));
    socket.write('34\r\n');
    const got = await received;
    assert.equal(got.bytes, 1234);
    assert.equal(got.sha256, expectedSourceDigest(1234));
    socket.destroy();
  });

  test('a bad count or an early FIN ends without data', async () => {
    const b = await backend('source');
    for (const input of ['abc\n', '']) {
      const socket = await dial(b);
      const received = drain(socket);
      socket.end(input);
      const got = await received;
      assert.equal(got.bytes, 0, JSON.stringify(input));
      socket.destroy();
    }
  });

  test('streams 256 MiB quickly', async () => {
    const b = await backend('source');
    const n = 256 * 1024 * 1024;
    const socket = await dial(b);
    let bytes = 0;
    const done = new Promise<void>((resolve) => socket.once('end', resolve));
    socket.on('data', (c: Buffer) => (bytes += c.length));
    const t0 = process.hrtime.bigint();
    socket.write(`${n}\n`);
    await done;
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    assert.equal(bytes, n);
    // Generous bound for CI machines; locally this runs at well over 1 GiB/s.
    assert.ok(seconds < 10, `took ${seconds}s`);
    socket.destroy();
  });
});

describe('sink backend', () => {
  test('answers BYTES SHA256 after the client half-closes', async () => {
    const b = await backend('sink');
    const socket = await dial(b);
    const received = drain(socket);
    const payload = Buffer.alloc(2 * 1024 * 1024 + 5, 0xab);
    socket.write(payload.subarray(0, 1000));
    socket.end(payload.subarray(1000));
    const got = await received;
    assert.equal(got.text, `${payload.length} ${createHash('sha256').update(payload).digest('hex')}\n`);
    socket.destroy();
  });

  test('an empty stream has the empty digest', async () => {
    const b = await backend('sink');
    const socket = await dial(b);
    const received = drain(socket);
    socket.end();
    assert.equal((await received).text, `0 ${createHash('sha256').digest('hex')}\n`);
    socket.destroy();
  });
});

test('close() stops the server and drops open connections', async () => {
  const b = await startBackend('echo', 'x');
  const socket = await dial(b);
  // The client half-opens (allowHalfOpen): the server going away shows as 'end'.
  const ended = new Promise((resolve) => socket.once('end', resolve));
  socket.on('error', () => {});
  await b.close();
  await ended;
  socket.destroy();
  await assert.rejects(dial(b), /ECONNREFUSED/);
});

async function waitUntil(predicate: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}
