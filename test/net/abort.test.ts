/** untilAborted: one waiter gives up without cancelling the shared work, and leaves no listener behind. */
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { test } from 'node:test';
import { untilAborted } from '../../src/net/abort.js';

test('settles as the promise does when the signal stays quiet, and removes its listener', async () => {
  const controller = new AbortController();
  assert.equal(await untilAborted(Promise.resolve(7), controller.signal, () => new Error('aborted')), 7);
  await assert.rejects(untilAborted(Promise.reject(new Error('boom')), controller.signal, () => new Error('aborted')), /boom/);
  assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
});

test('without a signal it is the promise itself', () => {
  const p = Promise.resolve(1);
  assert.equal(untilAborted(p, undefined, () => new Error('never')), p);
});

test('rejects with reason(signal) on abort, already aborted or later, while the work goes on', async () => {
  let finish!: (v: string) => void;
  const work = new Promise<string>((resolve) => (finish = resolve));
  const controller = new AbortController();
  const waiting = untilAborted(work, controller.signal, (signal) => new Error(`gave up: ${String(signal.reason)}`));
  controller.abort('client left');
  await assert.rejects(waiting, /gave up: client left/);
  await assert.rejects(untilAborted(work, controller.signal, (signal) => new Error(String(signal.reason))), /client left/);
  finish('done');
  assert.equal(await work, 'done');
});
