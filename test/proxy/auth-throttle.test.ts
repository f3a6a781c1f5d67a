/**
 * The limiter behind slowed wrong-password answers (auth-throttle.ts), with
 * synthetic addresses and clocks: on loopback every client is 127.0.0.1, so
 * what happens with thousands of distinct addresses is tested here.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AuthThrottle, DEFAULT_AUTH_THROTTLE, OVERFLOW_KEY, throttleKey } from '../../src/proxy/auth-throttle.js';

const T0 = 1_000_000;

describe('AuthThrottle', () => {
  test('the first five failures are free, then each waits twice as long as the one before, up to 3 s', () => {
    const throttle = new AuthThrottle();
    const delays = Array.from({ length: 12 }, (_, i) => throttle.failed('10.0.0.1', T0 + i).delayMs);
    assert.deepEqual(delays, [0, 0, 0, 0, 0, 250, 500, 1000, 2000, 3000, 3000, 3000]);
    assert.equal(throttle.delayFor(1_000_000), DEFAULT_AUTH_THROTTLE.maxDelayMs, 'a huge count stays at the cap');
  });

  test('addresses are counted apart: one hammering address does not slow another', () => {
    const throttle = new AuthThrottle();
    for (let i = 0; i < 50; i++) throttle.failed('10.0.0.1', T0);
    assert.equal(throttle.failed('10.0.0.2', T0).delayMs, 0);
    assert.equal(throttle.failed('10.0.0.1', T0).delayMs, 3000);
  });

  test('an address is forgotten a window after its last failure, not before', () => {
    const throttle = new AuthThrottle();
    for (let i = 0; i < 8; i++) throttle.failed('10.0.0.1', T0);
    const { windowMs } = DEFAULT_AUTH_THROTTLE;
    // Still counted just inside the window: the 9th failure.
    assert.deepEqual(throttle.failed('10.0.0.1', T0 + windowMs), { delayMs: 2000, failures: 9, key: '10.0.0.1' });
    // A window of quiet after that one: counting starts again.
    assert.deepEqual(throttle.failed('10.0.0.1', T0 + 2 * windowMs + 1), { delayMs: 0, failures: 1, key: '10.0.0.1' });
  });

  test('10,000 distinct addresses: the table stays at its bound, later addresses share one count, counted addresses keep theirs', () => {
    const throttle = new AuthThrottle({ maxAddresses: 1000 });
    for (let i = 0; i < 6; i++) throttle.failed('192.0.2.1', T0);
    for (let i = 0; i < 10_000; i++) {
      throttle.failed(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, T0 + 1);
      assert.ok(throttle.size <= 1000, `table grew to ${throttle.size}`);
    }
    assert.equal(throttle.size, 1000);
    // Cycling through new addresses did not flush the attacker's own count.
    assert.equal(throttle.failed('192.0.2.1', T0 + 2).delayMs, 500);
    // A new address's failure counts on the overflow entry, which 9,001 failures made slow.
    const overflow = throttle.failed('198.51.100.7', T0 + 3);
    assert.equal(overflow.key, OVERFLOW_KEY);
    assert.equal(overflow.delayMs, 3000);
    // A window later every entry has expired: the table empties as new failures come.
    const later = throttle.failed('198.51.100.7', T0 + DEFAULT_AUTH_THROTTLE.windowMs + 10);
    assert.deepEqual(later, { delayMs: 0, failures: 1, key: '198.51.100.7' });
    assert.equal(throttle.size, 1);
  });

  test('an IPv6 client is counted by its /64, an IPv4-mapped one as IPv4', () => {
    assert.equal(throttleKey('2001:db8:0:1::5'), '2001:db8:0:1::/64');
    assert.equal(throttleKey('2001:db8:0:1:ffff:1:2:3'), '2001:db8:0:1::/64');
    assert.equal(throttleKey('[2001:db8:0:2::1]'), '2001:db8:0:2::/64');
    assert.equal(throttleKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(throttleKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
    assert.equal(throttleKey('::ffff:10.1.2.3'), '10.1.2.3');
    assert.equal(throttleKey('::1'), '0:0:0:0::/64');
    assert.equal(throttleKey('127.0.0.1'), '127.0.0.1');
    const throttle = new AuthThrottle();
    for (let i = 0; i < 5; i++) throttle.failed(`2001:db8:0:1::${i + 1}`, T0);
    assert.equal(throttle.failed('2001:db8:0:1:aaaa::1', T0).delayMs, 250, 'a new address in the same /64 is not a fresh start');
    assert.equal(throttle.failed('2001:db8:0:2::1', T0).delayMs, 0);
  });

  test('options are checked', () => {
    assert.throws(() => new AuthThrottle({ maxDelayMs: -1 }), /`maxDelayMs` to be a non-negative integer/);
    assert.throws(() => new AuthThrottle({ maxAddresses: 0 }), /`maxAddresses` to be at least 1/);
  });
});
