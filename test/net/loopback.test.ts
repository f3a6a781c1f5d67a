/**
 * The one loopback check and the one "no listener off loopback without
 * credentials" rule. The semantics are the stricter-correct union of the two
 * checks that used to disagree: every spelling of a loopback address counts
 * (including IPv4-mapped IPv6, which the CLI's copy refused), and of names only
 * `localhost` itself (not `*.localhost`, which the proxy's copy accepted).
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { isLoopbackHost, openListenerRefusal } from '../../src/net/loopback.js';

describe('isLoopbackHost', () => {
  test('loopback names', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) assert.ok(isLoopbackHost(h), h);
    for (const h of ['0.0.0.0', '::', '', '10.0.0.1', '::2', 'localhost.example.com', '128.0.0.1']) assert.ok(!isLoopbackHost(h), h);
  });

  test('every spelling of a loopback address counts', () => {
    for (const h of ['127.255.255.254', 'LOCALHOST', '::ffff:7f00:1', '::FFFF:127.0.0.1', '[::ffff:127.0.0.1]', '0::1', '::0:1']) assert.ok(isLoopbackHost(h), h);
  });

  test('names that merely look local, mapped non-loopback addresses and wildcards do not', () => {
    for (const h of [
      'foo.localhost',
      'localhost.',
      'localhost:80',
      '127.0.0.1.nip.io',
      '::ffff:10.0.0.1',
      '::ffff:0.0.0.0',
      '::ffff:0:0',
      '0:0:0:0:0:0:0:0',
      '1::1',
      'fe80::1%lo',
      '[::1',
      '127.0.0',
      '0x7f.0.0.1',
      '2130706433',
    ]) {
      assert.ok(!isLoopbackHost(h), h);
    }
  });

  test('an address it accepts really is reachable only over loopback: binding there works and reports a loopback address', async () => {
    for (const host of ['127.0.0.1', '::ffff:127.0.0.1', 'localhost']) {
      assert.ok(isLoopbackHost(host));
      const server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port: 0 }, resolve);
      });
      const bound = server.address();
      assert.ok(bound !== null && typeof bound === 'object');
      assert.ok(isLoopbackHost(bound.address), `${host} bound to ${bound.address}`);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('openListenerRefusal', () => {
  test('loopback, or any address with credentials, is allowed', () => {
    for (const host of ['127.0.0.1', '::1', 'localhost', '::ffff:127.0.0.1']) assert.equal(openListenerRefusal(host, false), undefined, host);
    for (const host of ['0.0.0.0', '::', '', '192.168.1.10', 'example.com']) assert.equal(openListenerRefusal(host, true), undefined, host);
  });

  test('anything else without credentials is refused, naming what was asked for', () => {
    assert.equal(openListenerRefusal('0.0.0.0', false), 'refusing to listen on 0.0.0.0 without credentials');
    assert.equal(openListenerRefusal('', false), 'refusing to listen on all interfaces without credentials');
    assert.equal(openListenerRefusal('::', false, '[::]:1080'), 'refusing to listen on [::]:1080 without credentials');
    assert.equal(openListenerRefusal('foo.localhost', false), 'refusing to listen on foo.localhost without credentials');
  });
});
