/**
 * Liveness and per-stream read buffering: a connection that our own slow
 * reader paused is not declared dead for silence (the PING answer sits unread
 * in our buffer); a dead peer is still found by PING as soon as we read; a
 * stream may hold its buffer limit unread before the socket stops, and the
 * shared ReadBudget caps the sum.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KubesocksError } from '../../src/errors.js';
import { ReadBudget } from '../../src/spdy/read-budget.js';
import { patternBuffer, sleep, waitFor, within } from '../helpers/spdy-net.js';
import { sessionClosed, sessionWithRawPeer } from '../helpers/spdy-pair.js';
import { dataFrame } from '../helpers/spdy-wire.js';

const KiB = 1024;
const PF = (requestId: string) => ({ streamtype: 'data', port: '80', requestid: requestId });

/** Sends `bytes` on stream `id` in 64 KiB DATA frames, without waiting for the socket. */
function sendData(peer: { send(frame: Buffer): void }, id: number, bytes: Buffer): void {
  for (let offset = 0; offset < bytes.length; offset += 64 * KiB) peer.send(dataFrame(id, bytes.subarray(offset, offset + 64 * KiB)));
}

test('a session its own reader paused is not declared dead for silence; after the pause every byte arrives, and then PING finds the dead peer', async (t) => {
  const { session, peer, close } = await sessionWithRawPeer('client', {
    pingIntervalMs: 40,
    pingTimeoutMs: 150,
    streamHighWaterMark: 16 * KiB,
    streamBufferBytes: 64 * KiB,
  });
  t.after(close);
  // The session closes its socket with the peer's PINGs unread: the peer may see a reset.
  peer.closed.catch(() => {});
  const stream = session.openStream(PF('0'));
  stream.on('error', () => {});
  await peer.synReply(1, {});
  const payload = patternBuffer(8 * 1024 * KiB);
  sendData(peer, 1, payload); // the peer never answers a PING: it is dead as far as PING can tell
  await waitFor(() => session.readingPaused, 2000, 'the reader to pause the session');
  await sleep(1000); // more than six PING timeouts
  assert.equal(session.closed, false, 'a paused session must not be declared dead');
  assert.ok(stream.readableLength <= 64 * KiB + 64 * KiB, `held ${stream.readableLength} bytes`);

  const closed = sessionClosed(session);
  const chunks: Buffer[] = [];
  let received = 0;
  stream.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    received += chunk.length;
  });
  await waitFor(() => received === payload.length, 5000, 'all bytes');
  assert.ok(Buffer.concat(chunks).equals(payload), 'bytes intact');
  // Reading again, with nothing more coming and no PING answered: the peer is found dead.
  const started = Date.now();
  const error = await within(closed, 3000, 'the dead peer to be found');
  assert.ok(error instanceof KubesocksError && error.code === 'CONNECTION_LOST');
  assert.match(error.message, /no answer to PING/);
  assert.ok(Date.now() - started >= 100, 'found by the PING timeout, counted from the resume');
});

test('a stream holds up to its buffer limit before the socket stops; the shared budget stops it sooner', async (t) => {
  const roomy = await sessionWithRawPeer('client', { streamHighWaterMark: 16 * KiB, streamBufferBytes: 1024 * KiB });
  t.after(roomy.close);
  roomy.peer.closed.catch(() => {});
  const a = roomy.session.openStream(PF('0'));
  a.on('error', () => {});
  await roomy.peer.synReply(1, {});
  sendData(roomy.peer, 1, patternBuffer(512 * KiB));
  await waitFor(() => a.readableLength === 512 * KiB, 2000, 'the 512 KiB to be held');
  assert.equal(roomy.session.readingPaused, false, 'under its limit the socket keeps being read');
  sendData(roomy.peer, 1, patternBuffer(1024 * KiB));
  await waitFor(() => roomy.session.readingPaused, 2000, 'the socket to stop past the limit');

  const budget = new ReadBudget(128 * KiB);
  const tight = await sessionWithRawPeer('client', { streamHighWaterMark: 16 * KiB, streamBufferBytes: 1024 * KiB, readBudget: budget });
  t.after(tight.close);
  tight.peer.closed.catch(() => {});
  const b = tight.session.openStream(PF('0'));
  b.on('error', () => {});
  await tight.peer.synReply(1, {});
  sendData(tight.peer, 1, patternBuffer(512 * KiB));
  await waitFor(() => tight.session.readingPaused, 2000, 'the socket to stop once the budget is used up');
  assert.ok(b.readableLength < 512 * KiB && budget.usedBytes >= 128 * KiB, `held ${b.readableLength}, budget ${budget.usedBytes}`);
  // Reading returns the bytes to the budget; a destroyed stream returns what it held.
  b.destroy();
  assert.equal(budget.usedBytes, 0);
});
