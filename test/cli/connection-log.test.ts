/**
 * The connection log: failures a local program can cause by the thousand
 * come out as one line per interval and client address, with a count and
 * what to do; other failures and (with -v) every connection one line each.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectionLog } from '../../src/cli/connection-log.js';
import type { ConnectionRecord } from '../../src/proxy/client-connection.js';

const record = (client: string, code: 'TIMEOUT' | 'OVERLOADED' | 'PROXY_AUTH' | 'POD_REFUSED' | null, target: string | null = null): ConnectionRecord => ({
  protocol: 'socks5',
  client,
  target,
  via: null,
  bytesUp: 0,
  bytesDown: 0,
  durationMs: 1,
  ...(code ? { error: { code, message: `${code} happened` } } : {}),
});

test('1,200 wrong passwords and 3,000 silent sockets give a handful of lines, each with a count and advice', async () => {
  const lines: string[] = [];
  const log = new ConnectionLog({ verbose: false, print: (l) => lines.push(l), intervalMs: 100 });
  for (let i = 0; i < 1200; i++) log.record(record(`127.0.0.1:${10000 + i}`, 'PROXY_AUTH', 'web.demo:80'));
  for (let i = 0; i < 3000; i++) log.record(record(`127.0.0.1:${20000 + i}`, i % 2 ? 'TIMEOUT' : 'OVERLOADED'));
  for (let i = 0; i < 10; i++) log.record(record(`[::1]:${30000 + i}`, 'PROXY_AUTH', 'web.demo:80'));
  log.record(record('127.0.0.1:1', 'POD_REFUSED', 'web.demo:80'));
  log.record(record('127.0.0.1:2', null, 'web.demo:80'));
  assert.equal(lines.length, 4, lines.join('\n')); // three firsts and the refused one; not the success (no -v)
  await sleep(250);
  assert.equal(lines.length, 7, lines.join('\n'));
  assert.ok(lines.includes('127.0.0.1: 1199 more failed proxy logins in the last 0 s — a local program presents wrong proxy credentials; its attempts are slowed down. Check which program uses the proxy (ss -tnp)'), lines.join('\n'));
  assert.ok(lines.some((l) => l.startsWith('127.0.0.1: 2999 more connections closed without a complete handshake')));
  assert.ok(lines.some((l) => l.startsWith('[::1]: 9 more failed proxy logins')));
  log.close();
});

test('with -v every connection is a line; close() tells what is still counted', () => {
  const lines: string[] = [];
  const log = new ConnectionLog({ verbose: true, print: (l) => lines.push(l), intervalMs: 60_000 });
  log.record(record('127.0.0.1:2', null, 'web.demo:80'));
  log.record(record('127.0.0.1:3', 'TIMEOUT'));
  log.record(record('127.0.0.1:4', 'TIMEOUT'));
  log.close();
  assert.deepEqual(lines.slice(0, 2), ['127.0.0.1:2 socks5 web.demo:80 (up 0 B, down 0 B, 1 ms)', '127.0.0.1:3 socks5 (no target) failed [TIMEOUT]: TIMEOUT happened']);
  assert.match(lines[2] ?? '', /^127\.0\.0\.1: 1 more connections closed without a complete handshake in the last 60 s/);
});
