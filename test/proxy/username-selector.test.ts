/**
 * The proxy username as a context selector (issue 12): admit() with and
 * without configured credentials, and the SOCKS5 handshake carrying the
 * selector to the Connector's target.
 */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { admit, admitBasic, CredentialChecker } from '../../src/proxy/auth.js';
import { Socks5Handshake } from '../../src/proxy/socks5.js';
import { socks5ConnectDomain, userPass } from '../helpers/proxy-fixtures.js';

const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

describe('admit', () => {
  test('without credentials: everyone is admitted; a non-empty username is the selector', () => {
    assert.deepEqual(admit(undefined, 'staging', 'x'), { ok: true, selector: 'staging' });
    assert.deepEqual(admit(undefined, Buffer.from('prod'), Buffer.alloc(0)), { ok: true, selector: 'prod' });
    assert.deepEqual(admit(undefined, '', ''), { ok: true, selector: undefined });
    assert.deepEqual(admitBasic(undefined, undefined), { ok: true, selector: undefined });
    assert.deepEqual(admitBasic(undefined, basic('staging', '')), { ok: true, selector: 'staging' });
  });

  test('with USER:PASS: USER → no selector, USER+ALIAS → ALIAS, the password guards both', () => {
    const checker = new CredentialChecker({ username: 'me+team', password: 'pw' });
    assert.deepEqual(admit(checker, 'me+team', 'pw'), { ok: true, selector: undefined });
    assert.deepEqual(admit(checker, 'me+team+staging', 'pw'), { ok: true, selector: 'staging' });
    assert.deepEqual(admit(checker, 'me+team+staging', 'nope'), { ok: false, selector: undefined });
    assert.deepEqual(admit(checker, 'me', 'pw'), { ok: false, selector: undefined }, 'splitting at the last + only');
    assert.deepEqual(admit(checker, 'staging', 'pw'), { ok: false, selector: undefined });
    assert.deepEqual(admit(checker, 'me+team+', 'pw'), { ok: false, selector: undefined });
    assert.deepEqual(admit(checker, '+staging', 'pw'), { ok: false, selector: undefined });
    assert.deepEqual(admitBasic(checker, undefined), { ok: false, selector: undefined });
    assert.deepEqual(admitBasic(checker, basic('me+team+prod', 'pw')), { ok: true, selector: 'prod' });
  });
});

describe('SOCKS5: the RFC 1929 username reaches the target as its selector', () => {
  test('without credentials, a client offering no-auth and username/password is asked for the username', () => {
    const h = new Socks5Handshake();
    const greeting = h.feed(Buffer.from([0x05, 0x02, 0x00, 0x02]));
    assert.deepEqual(greeting.send, [Buffer.from([0x05, 0x02])]);
    const auth = h.feed(userPass('staging', 'x'));
    assert.deepEqual(auth.send, [Buffer.from([0x01, 0x00])]);
    const req = h.feed(socks5ConnectDomain('web.demo', 80));
    assert.equal(req.outcome.type, 'connect');
    assert.deepEqual(req.outcome.type === 'connect' && req.outcome.target, { host: 'web.demo', port: 80, selector: 'staging' });
  });

  test('a client offering only no-auth gets it, and its target has no selector', () => {
    const h = new Socks5Handshake();
    assert.deepEqual(h.feed(Buffer.from([0x05, 0x01, 0x00])).send, [Buffer.from([0x05, 0x00])]);
    const req = h.feed(socks5ConnectDomain('web.demo', 80));
    assert.deepEqual(req.outcome.type === 'connect' && req.outcome.target, { host: 'web.demo', port: 80 });
  });

  test('with credentials, USER+ALIAS selects and a wrong password still fails the sub-negotiation', () => {
    const checker = new CredentialChecker({ username: 'u', password: 'p' });
    const ok = new Socks5Handshake({ checker });
    ok.feed(Buffer.from([0x05, 0x01, 0x02]));
    ok.feed(userPass('u+prod', 'p'));
    const req = ok.feed(socks5ConnectDomain('web.demo', 80));
    assert.deepEqual(req.outcome.type === 'connect' && req.outcome.target, { host: 'web.demo', port: 80, selector: 'prod' });
    const bad = new Socks5Handshake({ checker });
    bad.feed(Buffer.from([0x05, 0x01, 0x02]));
    const step = bad.feed(userPass('u+prod', 'wrong'));
    assert.equal(step.outcome.type, 'fail');
    assert.deepEqual(step.send, []);
  });
});
