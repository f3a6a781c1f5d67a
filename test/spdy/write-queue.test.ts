/**
 * A session whose socket already holds writeBufferBytes does not hand more
 * stream data to it: the writes wait, unencrypted, in arrival order, and
 * their streams stay paused. Many streams writing at once therefore queue at
 * most about one frame past the limit in the socket (before: a chunk per
 * stream), and every byte still arrives, in order; a stream reset while its
 * write waits sends nothing more.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SpdyStream } from '../../src/spdy/stream.js';
import { collect, patternBuffer, waitFor } from '../helpers/spdy-net.js';
import { sessionPair } from '../helpers/spdy-pair.js';

const LIMIT = 64 * 1024;
const CHUNK = 64 * 1024;
const STREAMS = 20;
const CHUNKS = 4;

test('writes past writeBufferBytes wait in the session, not in the socket; all bytes arrive in order', async (t) => {
  const pair = await sessionPair({ tap: false, client: { writeBufferBytes: LIMIT } });
  t.after(() => pair.close());
  const received = new Map<string, Promise<Buffer>>();
  pair.server.on('stream', (stream: SpdyStream) => {
    stream.reply({});
    const data = collect(stream);
    data.catch(() => {}); // stream 0 is reset on purpose
    received.set(String(stream.headers.name), data);
  });
  // The peer reads nothing for now: the kernel buffers fill and the client socket queues.
  pair.serverSocket.pause();

  let maxQueued = 0;
  const sample = (): void => {
    maxQueued = Math.max(maxQueued, pair.clientSocket.writableLength);
  };
  const streams: SpdyStream[] = [];
  const payloads: Buffer[] = [];
  for (let i = 0; i < STREAMS; i++) {
    const stream = pair.client.openStream({ name: String(i) });
    streams.push(stream);
    payloads.push(patternBuffer(CHUNK * CHUNKS, i + 1));
  }
  const writers = streams.map(
    (stream, i) =>
      new Promise<void>((resolve) => {
        let next = 0;
        const write = (): void => {
          while (next < CHUNKS) {
            const chunk = payloads[i]!.subarray(next * CHUNK, (next + 1) * CHUNK);
            next++;
            const more = stream.write(chunk);
            sample();
            if (!more) return void stream.once('drain', write);
          }
          stream.end(() => resolve());
        };
        write();
      }),
  );
  const sampler = setInterval(sample, 1);
  // While the peer is not reading, the socket never holds more than the limit plus one frame.
  await new Promise((resolve) => setTimeout(resolve, 300));
  sample();
  assert.ok(maxQueued <= LIMIT + CHUNK + 64, `the socket queued ${maxQueued} bytes (limit ${LIMIT})`);
  assert.ok(maxQueued > 0);

  // Stream 0 is reset while its writes wait: nothing more of it goes out, the others go on.
  streams[0]!.destroy();
  pair.serverSocket.resume();
  await Promise.all(writers.slice(1));
  clearInterval(sampler);
  for (let i = 1; i < STREAMS; i++) {
    await waitFor(() => received.has(String(i)), 5000);
    const got = await received.get(String(i))!;
    assert.ok(got.equals(payloads[i]!), `stream ${i}: ${got.length} bytes, in order`);
  }
  assert.ok(maxQueued <= LIMIT + CHUNK + 64, `the socket queued ${maxQueued} bytes (limit ${LIMIT})`);
});
