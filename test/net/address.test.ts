/** The one host:port parser and the port checks every room uses. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatHostPort, isValidPort, parseAuthority, parsePortText, splitHostPort } from '../../src/net/address.js';

describe('splitHostPort', () => {
  test('names, IPv4 and bracketed IPv6, with and without a port', () => {
    assert.deepEqual(splitHostPort('web.demo:80'), { host: 'web.demo', port: '80' });
    assert.deepEqual(splitHostPort('10.0.0.1:5432'), { host: '10.0.0.1', port: '5432' });
    assert.deepEqual(splitHostPort('[::1]:8080'), { host: '::1', port: '8080' });
    assert.deepEqual(splitHostPort('[::1]'), { host: '::1', port: undefined });
    assert.deepEqual(splitHostPort('web'), { host: 'web', port: undefined });
    // The port comes back as written; checking it is the caller's job.
    assert.deepEqual(splitHostPort('web:http'), { host: 'web', port: 'http' });
    assert.deepEqual(splitHostPort('web:'), { host: 'web', port: '' });
  });

  test('refuses an empty host, brackets around a non-IPv6, and unbracketed IPv6 (ambiguous: is ::1:80 a port?)', () => {
    for (const bad of ['', ':80', '[]:80', '[web]:80', '[10.0.0.1]:80', '::1', '::1:80', 'a:b:c', '[::1]x', '[::1']) assert.equal(splitHostPort(bad), null, bad);
  });
});

describe('ports', () => {
  test('parsePortText: 1-5 decimal digits, 0-65535', () => {
    assert.equal(parsePortText('0'), 0);
    assert.equal(parsePortText('00080'), 80);
    assert.equal(parsePortText('65535'), 65535);
    for (const bad of ['', '65536', '99999', '123456', '-1', '+1', '1e3', ' 80', '80 ', '0x50', 'http']) assert.equal(parsePortText(bad), undefined, bad);
  });

  test('isValidPort: an integer 1-65535', () => {
    for (const p of [1, 80, 65535]) assert.ok(isValidPort(p), String(p));
    for (const p of [0, -1, 65536, 1.5, NaN, Infinity]) assert.ok(!isValidPort(p), String(p));
  });
});

describe('parseAuthority and formatHostPort', () => {
  test('keeps the host as written, strips a trailing dot, applies the default port', () => {
    assert.deepEqual(parseAuthority('Web.Demo.:81'), { host: 'Web.Demo', port: 81 });
    assert.deepEqual(parseAuthority('[::1]:443'), { host: '::1', port: 443 });
    assert.deepEqual(parseAuthority('web.demo', 80), { host: 'web.demo', port: 80 });
    assert.equal(parseAuthority('web.demo'), null);
  });

  test('refuses userinfo, paths, zone ids, port 0 and junk', () => {
    for (const bad of ['u@web:80', 'web/x:80', 'web:0', 'web:65536', 'web:', '[fe80::1%eth0]:80', '[::1]:x', 'we b:80', ':80', 'a:b:80']) {
      assert.equal(parseAuthority(bad, 80), null, bad);
    }
  });

  test('formatHostPort brackets IPv6 only, and round-trips through parseAuthority', () => {
    assert.equal(formatHostPort('::1', 80), '[::1]:80');
    assert.equal(formatHostPort('10.0.0.1', 80), '10.0.0.1:80');
    assert.equal(formatHostPort('web.demo', 80), 'web.demo:80');
    for (const [host, port] of [['::1', 1], ['web.demo', 65535], ['10.1.2.3', 5432]] as const) {
      assert.deepEqual(parseAuthority(formatHostPort(host, port)), { host, port });
    }
  });
});
