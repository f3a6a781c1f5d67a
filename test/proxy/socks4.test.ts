/**
 * SOCKS4 and SOCKS4a: the parser byte by byte, then over loopback sockets.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ErrorCode } from '../../src/errors.js';
import { Socks4Handshake } from '../../src/proxy/socks4.js';
import { RawClient, socks4aConnect, startProxyFixture, u16, waitFor, type ProxyFixture } from '../helpers/proxy-fixtures.js';

const GRANTED = Buffer.from([0x00, 0x5a, 0, 0, 0, 0, 0, 0]);
const REJECTED = Buffer.from([0x00, 0x5b, 0, 0, 0, 0, 0, 0]);

function socks4Connect(ip: number[], port: number, userId = ''): Buffer {
  return Buffer.concat([Buffer.from([0x04, 0x01]), u16(port), Buffer.from(ip), Buffer.from(userId), Buffer.from([0])]);
}

describe('SOCKS4 handshake parser', () => {
  test('SOCKS4 to an IPv4 address, one byte at a time', () => {
    const h = new Socks4Handshake();
    const bytes = socks4Connect([10, 244, 0, 10], 8080, 'someone');
    for (let i = 0; i < bytes.length - 1; i++) assert.deepEqual(h.feed(bytes.subarray(i, i + 1)), { send: [], outcome: { type: 'more' } }, `byte ${i}`);
    assert.deepEqual(h.feed(bytes.subarray(-1)).outcome, { type: 'connect', target: { host: '10.244.0.10', port: 8080 }, rest: Buffer.alloc(0) });
  });

  test('SOCKS4a with a host name, one byte at a time, and payload after it', () => {
    const h = new Socks4Handshake();
    const bytes = socks4aConnect('web.demo.svc', 80, 'me');
    for (let i = 0; i < bytes.length - 1; i++) assert.equal(h.feed(bytes.subarray(i, i + 1)).outcome.type, 'more', `byte ${i}`);
    const step = h.feed(Buffer.concat([bytes.subarray(-1), Buffer.from('\x00\x04payload')]));
    assert.deepEqual(step.outcome, { type: 'connect', target: { host: 'web.demo.svc', port: 80 }, rest: Buffer.from('\x00\x04payload') });
    assert.throws(() => h.feed(Buffer.from([0])), /fed after it was done/);
  });

  const failing: Array<[string, Buffer, ErrorCode]> = [
    ['BIND', Buffer.from([0x04, 0x02, 0, 80, 127, 0, 0, 1, 0]), 'PROTOCOL_ERROR'],
    ['unknown command', Buffer.from([0x04, 0x07, 0, 80, 127, 0, 0, 1, 0]), 'PROTOCOL_ERROR'],
    ['port 0', socks4Connect([127, 0, 0, 1], 0), 'BAD_TARGET'],
    ['address 0.0.0.0', socks4Connect([0, 0, 0, 0], 80), 'BAD_TARGET'],
    ['empty 4a host', socks4aConnect('', 80), 'BAD_TARGET'],
    ['user id over 255 bytes', Buffer.concat([Buffer.from([0x04, 0x01, 0, 80, 127, 0, 0, 1]), Buffer.alloc(300, 0x41)]), 'PROTOCOL_ERROR'],
    ['4a host over 255 bytes', Buffer.concat([Buffer.from([0x04, 0x01, 0, 80, 0, 0, 0, 1, 0]), Buffer.alloc(300, 0x61)]), 'BAD_TARGET'],
  ];
  for (const [name, bytes, code] of failing) {
    test(`${name} → 0x5B`, () => {
      const step = new Socks4Handshake().feed(bytes);
      assert.equal(step.outcome.type, 'fail');
      if (step.outcome.type !== 'fail') return;
      assert.deepEqual(step.outcome.reply, REJECTED);
      assert.equal(step.outcome.error.code, code);
    });
  }

  test('credentials required: SOCKS4 refused with 0x5B after the fixed part', () => {
    const h = new Socks4Handshake({ requireCredentials: true });
    const step = h.feed(Buffer.from([0x04, 0x01, 0, 80, 0, 0, 0, 1]));
    assert.deepEqual(step.outcome.type === 'fail' && step.outcome.reply, REJECTED);
    assert.equal(step.outcome.type === 'fail' && step.outcome.error.code, 'PROXY_AUTH');
  });
});

describe('SOCKS4 over loopback', () => {
  let f: ProxyFixture;
  before(async () => {
    f = await startProxyFixture();
  });
  after(async () => {
    await f.close();
  });

  test('SOCKS4 to 127.0.0.1, split byte by byte', async () => {
    const c = await RawClient.connect(f.port);
    await c.writeSlowly(socks4Connect([127, 0, 0, 1], f.echo.port, 'u'), 1);
    assert.deepEqual(await c.read(8), GRANTED);
    c.write('four');
    assert.equal((await c.read(4)).toString(), 'four');
    c.destroy();
  });

  test('SOCKS4a to a name, coalesced with payload', async () => {
    const c = await RawClient.connect(f.port);
    c.write(Buffer.concat([socks4aConnect('echo.test', 7), Buffer.from('4a!')]));
    assert.deepEqual(await c.read(8 + 3), Buffer.concat([GRANTED, Buffer.from('4a!')]));
    c.destroy();
    assert.deepEqual(f.connector.targets.at(-1), { host: 'echo.test', port: 7 });
  });

  test('failures get 0x5B and a close; the log keeps the code', async () => {
    for (const [host, code] of [['refused.test', 'POD_REFUSED'], ['missing.test', 'NOT_FOUND'], ['forbidden.test', 'FORBIDDEN'], ['slow.test', 'TIMEOUT']] as const) {
      const c = await RawClient.connect(f.port);
      c.write(socks4aConnect(host, 81));
      assert.deepEqual(await c.readToEnd(), REJECTED, host);
      c.destroy();
      await waitFor(() => f.records.some((r) => r.target === `${host}:81`), 'record');
      const r = f.records.find((x) => x.target === `${host}:81`);
      assert.equal(r?.protocol, 'socks4');
      assert.equal(r?.error?.code, code);
    }
  });

  test('with credentials configured, SOCKS4 is refused', async () => {
    const g = await startProxyFixture({ auth: { username: 'u', password: 'p' } });
    try {
      const c = await RawClient.connect(g.port);
      c.write(socks4aConnect('echo.test', 7, 'u'));
      assert.deepEqual(await c.readToEnd(), REJECTED);
      c.destroy();
      assert.equal(g.connector.targets.length, 0);
    } finally {
      await g.close();
    }
  });
});
