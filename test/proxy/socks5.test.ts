/**
 * SOCKS5 (RFC 1928) and username/password (RFC 1929): the parser byte by
 * byte, then the whole path over loopback sockets.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { KubesocksError, type ErrorCode, ERROR_CODES } from '../../src/errors.js';
import { CredentialChecker } from '../../src/proxy/auth.js';
import type { HandshakeStep } from '../../src/proxy/handshake.js';
import { FAILURE_REPLIES } from '../../src/proxy/replies.js';
import { Socks5Handshake } from '../../src/proxy/socks5.js';
import {
  RawClient,
  REFUSED_MESSAGE,
  socks5ConnectDomain,
  startEchoServer,
  startProxyFixture,
  u16,
  userPass,
  waitFor,
  type ProxyFixture,
} from '../helpers/proxy-fixtures.js';

const GREETING_NO_AUTH = Buffer.from([0x05, 0x01, 0x00]);
const GREETING_USERPASS = Buffer.from([0x05, 0x01, 0x02]);
const SUCCESS = Buffer.from([0x05, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
const reply = (rep: number): Buffer => Buffer.from([0x05, rep, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);

/** Feeds one byte at a time; asserts every step but the last says "more". */
function feedBytewise(h: Socks5Handshake, bytes: Buffer): { sent: Buffer[]; last: HandshakeStep } {
  const sent: Buffer[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const step = h.feed(bytes.subarray(i, i + 1));
    sent.push(...step.send);
    if (i < bytes.length - 1) assert.equal(step.outcome.type, 'more', `byte ${i} of ${bytes.toString('hex')}`);
    else return { sent, last: step };
  }
  throw new Error('empty input');
}

function ipv4Request(ip: number[], port: number): Buffer {
  return Buffer.concat([Buffer.from([0x05, 0x01, 0x00, 0x01, ...ip]), u16(port)]);
}

function ipv6Request(bytes: number[], port: number): Buffer {
  return Buffer.concat([Buffer.from([0x05, 0x01, 0x00, 0x04, ...bytes]), u16(port)]);
}

describe('SOCKS5 handshake parser', () => {
  test('no-auth CONNECT to a domain, one byte at a time', () => {
    const h = new Socks5Handshake();
    const { sent, last } = feedBytewise(h, Buffer.concat([GREETING_NO_AUTH, socks5ConnectDomain('web.demo.svc.cluster.local', 80)]));
    assert.deepEqual(sent, [Buffer.from([0x05, 0x00])]);
    assert.deepEqual(last.outcome, { type: 'connect', target: { host: 'web.demo.svc.cluster.local', port: 80 }, rest: Buffer.alloc(0) });
    assert.equal(h.state, 'done');
  });

  test('greeting, request and payload in one packet: payload comes back untouched', () => {
    const h = new Socks5Handshake();
    const payload = Buffer.from('GET / HTTP/1.1\r\n\r\n\x00\x05\x01');
    const step = h.feed(Buffer.concat([GREETING_NO_AUTH, socks5ConnectDomain('web.demo.', 8080), payload]));
    assert.deepEqual(step.send, [Buffer.from([0x05, 0x00])]);
    assert.equal(step.outcome.type, 'connect');
    if (step.outcome.type !== 'connect') return;
    assert.deepEqual(step.outcome.target, { host: 'web.demo', port: 8080 }, 'trailing dot removed');
    assert.deepEqual(step.outcome.rest, payload);
  });

  test('IPv4 and IPv6 addresses', () => {
    let h = new Socks5Handshake();
    h.feed(GREETING_NO_AUTH);
    assert.deepEqual(h.feed(ipv4Request([10, 96, 0, 10], 5432)).outcome, { type: 'connect', target: { host: '10.96.0.10', port: 5432 }, rest: Buffer.alloc(0) });
    const cases: Array<[number[], string]> = [
      [[...Array(15).fill(0), 1], '::1'],
      [[0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 1], '2001:db8::1'],
      [[0xfd, 0, 0, 0x10, 0, 0x96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a], 'fd00:10:96::a'],
      [[0, 1, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1], '1:0:1:1:1:1:1:1'],
      [[0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1], '1::1:0:0:1:1'],
    ];
    for (const [bytes, text] of cases) {
      h = new Socks5Handshake();
      const { last } = feedBytewise(h, Buffer.concat([GREETING_NO_AUTH, ipv6Request(bytes, 443)]));
      assert.deepEqual(last.outcome, { type: 'connect', target: { host: text, port: 443 }, rest: Buffer.alloc(0) });
    }
  });

  test('a bracketed IPv6 literal sent as a domain is unbracketed', () => {
    const h = new Socks5Handshake();
    const step = h.feed(Buffer.concat([GREETING_NO_AUTH, socks5ConnectDomain('[::1]', 80)]));
    assert.equal(step.outcome.type === 'connect' && step.outcome.target.host, '::1');
  });

  test('username/password accepted, byte by byte', () => {
    const checker = new CredentialChecker({ username: 'alice', password: 's3cret' });
    const h = new Socks5Handshake({ checker });
    const { sent, last } = feedBytewise(h, Buffer.concat([Buffer.from([0x05, 0x02, 0x00, 0x02]), userPass('alice', 's3cret'), socks5ConnectDomain('a.b', 1)]));
    assert.deepEqual(sent, [Buffer.from([0x05, 0x02]), Buffer.from([0x01, 0x00])]);
    assert.equal(last.outcome.type, 'connect');
  });

  test('wrong password: status 0x01 and fail', () => {
    const h = new Socks5Handshake({ checker: new CredentialChecker({ username: 'alice', password: 's3cret' }) });
    const step = h.feed(Buffer.concat([GREETING_USERPASS, userPass('alice', 's3cres')]));
    assert.deepEqual(step.send, [Buffer.from([0x05, 0x02])]);
    assert.equal(step.outcome.type, 'fail');
    if (step.outcome.type !== 'fail') return;
    assert.deepEqual(step.outcome.reply, Buffer.from([0x01, 0x01]));
    assert.equal(step.outcome.error.code, 'PROXY_AUTH');
    assert.ok(!step.outcome.error.message.includes('s3cre'), 'no password in the message');
  });

  test('credentials configured but the client offers only no-auth: 0xFF', () => {
    const h = new Socks5Handshake({ checker: new CredentialChecker({ username: 'u', password: 'p' }) });
    const step = h.feed(GREETING_NO_AUTH);
    assert.deepEqual(step.send, []);
    assert.deepEqual(step.outcome.type === 'fail' && step.outcome.reply, Buffer.from([0x05, 0xff]));
  });

  test('no acceptable method (GSSAPI only, or none at all): 0xFF', () => {
    for (const greeting of [[0x05, 0x01, 0x01], [0x05, 0x00], [0x05, 0x03, 0x80, 0x81, 0xfe]]) {
      const step = new Socks5Handshake().feed(Buffer.from(greeting));
      assert.equal(step.outcome.type, 'fail');
      if (step.outcome.type === 'fail') assert.deepEqual(step.outcome.reply, Buffer.from([0x05, 0xff]));
    }
  });

  test('no credentials configured: a client that offers only username/password is let in', () => {
    const h = new Socks5Handshake();
    const step = h.feed(Buffer.concat([GREETING_USERPASS, userPass('any', 'thing'), socks5ConnectDomain('x.y', 9)]));
    assert.deepEqual(step.send, [Buffer.from([0x05, 0x02]), Buffer.from([0x01, 0x00])]);
    assert.equal(step.outcome.type, 'connect');
  });

  const failing: Array<[string, Buffer, number | null, ErrorCode]> = [
    ['BIND', Buffer.from([0x05, 0x02, 0x00, 0x01, 127, 0, 0, 1, 0, 80]), 0x07, 'PROTOCOL_ERROR'],
    ['UDP ASSOCIATE', Buffer.from([0x05, 0x03, 0x00, 0x01, 0, 0, 0, 0, 0, 0]), 0x07, 'PROTOCOL_ERROR'],
    ['unknown command', Buffer.from([0x05, 0x09, 0x00, 0x01]), 0x07, 'PROTOCOL_ERROR'],
    ['unknown address type', Buffer.from([0x05, 0x01, 0x00, 0x02]), 0x08, 'BAD_TARGET'],
    ['request version 4', Buffer.from([0x04, 0x01, 0x00, 0x01]), 0x01, 'PROTOCOL_ERROR'],
    ['port 0', socks5ConnectDomain('web.demo', 0), 0x04, 'BAD_TARGET'],
    ['empty host name', socks5ConnectDomain('', 80), 0x04, 'BAD_TARGET'],
    ['control bytes in the host name', socks5ConnectDomain('we\nb', 80), 0x04, 'BAD_TARGET'],
  ];
  for (const [name, request, rep, code] of failing) {
    test(`${name} → reply ${rep} and close`, () => {
      const h = new Socks5Handshake();
      h.feed(GREETING_NO_AUTH);
      const step = h.feed(request);
      assert.equal(step.outcome.type, 'fail');
      if (step.outcome.type !== 'fail') return;
      assert.deepEqual(step.outcome.reply, rep === null ? null : reply(rep));
      assert.equal(step.outcome.error.code, code);
      assert.equal(h.state, 'failed');
      assert.throws(() => h.feed(Buffer.from([0])), /fed after it was failed/);
    });
  }

  test('a wrong greeting version closes without a reply', () => {
    const step = new Socks5Handshake().feed(Buffer.from([0x04, 0x01, 0x00]));
    assert.deepEqual(step.outcome.type === 'fail' && step.outcome.reply, null);
  });

  test('feeding a finished handshake throws (terminal states are never left)', () => {
    const h = new Socks5Handshake();
    h.feed(Buffer.concat([GREETING_NO_AUTH, socks5ConnectDomain('a.b', 1)]));
    assert.throws(() => h.feed(Buffer.from([1])), /fed after it was done/);
  });

  test('failure replies follow the table', () => {
    const h = new Socks5Handshake();
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      assert.deepEqual(h.failureReply(new KubesocksError(code, 'x')), reply(FAILURE_REPLIES[code].socks5));
    }
    assert.deepEqual(h.successReply(), SUCCESS);
  });
});

describe('SOCKS5 over loopback', () => {
  let f: ProxyFixture;
  before(async () => {
    f = await startProxyFixture();
  });
  after(async () => {
    await f.close();
  });

  test('handshake split byte by byte, then bytes both ways', async () => {
    const c = await RawClient.connect(f.port);
    await c.writeSlowly(GREETING_NO_AUTH, 1);
    assert.deepEqual(await c.read(2), Buffer.from([0x05, 0x00]));
    await c.writeSlowly(socks5ConnectDomain('echo.test', 7), 1);
    assert.deepEqual(await c.read(10), SUCCESS);
    c.write('ping');
    assert.equal((await c.read(4)).toString(), 'ping');
    c.destroy();
  });

  test('handshake coalesced with the first payload bytes', async () => {
    const c = await RawClient.connect(f.port);
    const payload = Buffer.from([0x05, 0x01, 0x00, 0x04, 0x00, 0xff, 0x00]); // looks like SOCKS; must pass untouched
    c.write(Buffer.concat([GREETING_NO_AUTH, socks5ConnectDomain('echo.test', 7), payload]));
    assert.deepEqual(await c.read(2 + 10), Buffer.concat([Buffer.from([0x05, 0x00]), SUCCESS]));
    assert.deepEqual(await c.read(payload.length), payload);
    c.destroy();
  });

  test('IPv4 literal', async () => {
    const c = await RawClient.connect(f.port);
    c.write(Buffer.concat([GREETING_NO_AUTH, ipv4Request([127, 0, 0, 1], f.echo.port), Buffer.from('v4')]));
    assert.deepEqual(await c.read(12), Buffer.concat([Buffer.from([0x05, 0x00]), SUCCESS]));
    assert.equal((await c.read(2)).toString(), 'v4');
    c.destroy();
    assert.deepEqual(f.connector.targets.at(-1), { host: '127.0.0.1', port: f.echo.port });
  });

  test('IPv6 literal', async () => {
    const echo6 = await startEchoServer('::1');
    try {
      const c = await RawClient.connect(f.port);
      c.write(Buffer.concat([GREETING_NO_AUTH, ipv6Request([...Array(15).fill(0), 1], echo6.port), Buffer.from('v6')]));
      assert.deepEqual(await c.read(12), Buffer.concat([Buffer.from([0x05, 0x00]), SUCCESS]));
      assert.equal((await c.read(2)).toString(), 'v6');
      c.destroy();
      assert.deepEqual(f.connector.targets.at(-1), { host: '::1', port: echo6.port });
    } finally {
      await echo6.close();
    }
  });

  test('BIND and UDP ASSOCIATE get 07 and the connection is closed', async () => {
    for (const cmd of [0x02, 0x03]) {
      const c = await RawClient.connect(f.port);
      c.write(Buffer.concat([GREETING_NO_AUTH, Buffer.from([0x05, cmd, 0x00, 0x01, 127, 0, 0, 1, 0, 80])]));
      assert.deepEqual(await c.readToEnd(), Buffer.concat([Buffer.from([0x05, 0x00]), reply(0x07)]));
      c.destroy();
    }
  });

  test('unknown address type gets 08', async () => {
    const c = await RawClient.connect(f.port);
    c.write(Buffer.concat([GREETING_NO_AUTH, Buffer.from([0x05, 0x01, 0x00, 0x07, 1, 2, 3])]));
    assert.deepEqual(await c.readToEnd(), Buffer.concat([Buffer.from([0x05, 0x00]), reply(0x08)]));
    c.destroy();
  });

  test('no acceptable method: 05 FF and close', async () => {
    const c = await RawClient.connect(f.port);
    c.write([0x05, 0x01, 0x01]);
    assert.deepEqual(await c.readToEnd(), Buffer.from([0x05, 0xff]));
    c.destroy();
  });

  const cases: Array<[string, number, ErrorCode]> = [
    ['refused.test', 0x05, 'POD_REFUSED'],
    ['missing.test', 0x04, 'NOT_FOUND'],
    ['forbidden.test', 0x02, 'FORBIDDEN'],
    ['slow.test', 0x06, 'TIMEOUT'],
  ];
  for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
    if (code !== 'CLOSED') cases.push([`fail-${code}.test`, FAILURE_REPLIES[code].socks5, code]);
  }
  test('every failure code gives its reply; the log has the full reason', async () => {
    for (const [host, rep, code] of cases) {
      const c = await RawClient.connect(f.port);
      c.write(Buffer.concat([GREETING_NO_AUTH, socks5ConnectDomain(host, 80), Buffer.from('early payload')]));
      assert.deepEqual(await c.readToEnd(), Buffer.concat([Buffer.from([0x05, 0x00]), reply(rep)]), host);
      c.destroy();
      await waitFor(() => f.records.some((r) => r.target === `${host}:80`), `record for ${host}`);
      const record = f.records.find((r) => r.target === `${host}:80`);
      assert.equal(record?.protocol, 'socks5');
      assert.equal(record?.error?.code, code);
    }
    assert.equal(f.records.find((r) => r.target === 'refused.test:80')?.error?.message, REFUSED_MESSAGE);
  });

  test('a finished tunnel is logged with target, via and byte counts', async () => {
    const c = await RawClient.connect(f.port);
    c.write(Buffer.concat([GREETING_NO_AUTH, socks5ConnectDomain('echo.test', 1234), Buffer.from('12345')]));
    await c.read(12 + 5);
    c.write('678');
    await c.read(3);
    c.end();
    await c.readToEnd();
    await waitFor(() => f.records.some((r) => r.target === 'echo.test:1234'), 'record');
    const r = f.records.find((x) => x.target === 'echo.test:1234');
    assert.equal(r?.via, 'test/echo');
    assert.equal(r?.bytesUp, 8);
    assert.equal(r?.bytesDown, 8);
    assert.equal(r?.error, undefined);
    assert.match(r?.client ?? '', /^127\.0\.0\.1:\d+$/);
    assert.ok((r?.durationMs ?? -1) >= 0);
  });
});

describe('SOCKS5 with credentials', () => {
  let f: ProxyFixture;
  before(async () => {
    f = await startProxyFixture({ auth: { username: 'alice', password: 'correct horse' } });
  });
  after(async () => {
    await f.close();
  });

  test('right password: tunnel works', async () => {
    const c = await RawClient.connect(f.port);
    c.write(Buffer.concat([Buffer.from([0x05, 0x02, 0x00, 0x02]), userPass('alice', 'correct horse'), socks5ConnectDomain('echo.test', 7), Buffer.from('hi')]));
    assert.deepEqual(await c.read(2 + 2 + 10 + 2), Buffer.concat([Buffer.from([0x05, 0x02, 0x01, 0x00]), SUCCESS, Buffer.from('hi')]));
    c.destroy();
  });

  test('wrong password: 01 01 and close; the password is not logged', async () => {
    const c = await RawClient.connect(f.port);
    c.write(Buffer.concat([GREETING_USERPASS, userPass('alice', 'battery staple'), socks5ConnectDomain('echo.test', 7)]));
    assert.deepEqual(await c.readToEnd(), Buffer.from([0x05, 0x02, 0x01, 0x01]));
    c.destroy();
    await waitFor(() => f.records.some((r) => r.error?.code === 'PROXY_AUTH'), 'record');
    assert.ok(!JSON.stringify(f.records).includes('staple'));
    assert.ok(!JSON.stringify(f.records).includes('horse'));
  });

  test('no username/password offered: 05 FF and close', async () => {
    const c = await RawClient.connect(f.port);
    c.write(GREETING_NO_AUTH);
    assert.deepEqual(await c.readToEnd(), Buffer.from([0x05, 0xff]));
    c.destroy();
  });
});
