/**
 * What a hostile local client can send and what must never come of it:
 * userinfo in URLs is never printed and is refused for the right reason,
 * non-ASCII names are shown as sent, the unspecified address is refused the
 * same way by every front, and a pipelined flood is read no faster than it
 * is served.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PIPELINE_LIMIT } from '../../src/proxy/http.js';
import type { Connected, ProxyTarget } from '../../src/net/connector.js';
import { RawClient, socks4aConnect, socks5ConnectDomain, startProxyFixture, TestConnector, u16, type ProxyFixture } from '../helpers/proxy-fixtures.js';

/** Counts the streams open at once. */
class CountingConnector extends TestConnector {
  open = 0;
  maxOpen = 0;

  override async connect(target: ProxyTarget, signal: AbortSignal): Promise<Connected> {
    const connected = await super.connect(target, signal);
    this.open++;
    this.maxOpen = Math.max(this.maxOpen, this.open);
    connected.stream.once('close', () => this.open--);
    return connected;
  }
}

let f: ProxyFixture<CountingConnector>;
before(async () => {
  f = await startProxyFixture({ handshakeTimeoutMs: 3000 }, (ports) => new CountingConnector(ports));
});
after(async () => {
  await f.close();
});

const lastRecord = () => f.records.at(-1);
const printed = (): string => JSON.stringify([f.records, f.errors.map((e) => e.message)]);

describe('userinfo in URLs', () => {
  test('GET http://user:pw@host/ is refused as userinfo, and the password is in no record, message or reply', async () => {
    const c = await RawClient.connect(f.port);
    c.write(`GET http://alice:s3cret-pw@web.test:${f.web.port}/x HTTP/1.1\r\nHost: web.test\r\n\r\n`);
    const reply = await c.readUntil('\r\n\r\n').then(async (head) => head + (await c.readUntil('\n')));
    assert.match(reply, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(reply, /userinfo \(user:password@\) is not allowed in a proxied request's URL/);
    assert.match(reply, /http:\/\/\*\*\*@web\.test/);
    assert.doesNotMatch(reply + printed(), /s3cret|alice/);
    assert.equal(lastRecord()?.error?.code, 'BAD_TARGET');
    c.destroy();
  });

  test('CONNECT user:pw@host:port is refused as userinfo, redacted', async () => {
    const c = await RawClient.connect(f.port);
    c.write('CONNECT alice:s3cret-pw@echo.test:7 HTTP/1.1\r\n\r\n');
    const reply = (await c.readToEnd()).toString();
    assert.match(reply, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(reply, /userinfo \(user:password@\) is not allowed in a CONNECT target/);
    assert.doesNotMatch(reply + printed(), /s3cret|alice/);
  });
});

describe('names and addresses in messages', () => {
  const utf8Name = 'wéb.test';

  test('a UTF-8 name over SOCKS5, SOCKS4a, CONNECT and absolute-form is shown as sent, and refused as not ASCII', async () => {
    const latin1 = Buffer.from(utf8Name, 'utf8').toString('latin1');
    const attempts: Array<[string, (c: RawClient) => void]> = [
      ['socks5', (c) => c.write(Buffer.concat([Buffer.from([0x05, 0x01, 0x00]), socks5ConnectDomain(latin1, 80)]))],
      ['socks4', (c) => c.write(Buffer.concat([Buffer.from([0x04, 0x01]), u16(80), Buffer.from([0, 0, 0, 1, 0]), Buffer.from(`${utf8Name}\0`, 'utf8')]))],
      ['http-connect', (c) => c.write(Buffer.from(`CONNECT ${utf8Name}:80 HTTP/1.1\r\n\r\n`, 'utf8'))],
      ['http', (c) => c.write(Buffer.from(`GET http://${utf8Name}/ HTTP/1.1\r\nHost: x\r\n\r\n`, 'utf8'))],
    ];
    for (const [protocol, send] of attempts) {
      const before = f.records.length;
      const c = await RawClient.connect(f.port);
      send(c);
      await c.readUntil(protocol.startsWith('http') ? '\n\n' : '', 3000).catch(() => '');
      const deadline = Date.now() + 3000;
      while (f.records.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      const record = f.records.slice(before).find((r) => r.error);
      assert.ok(record?.error, protocol);
      if (protocol.startsWith('http')) {
        // Node's parser refuses it first; the message quotes the request line as sent.
        assert.equal(record.error.code, 'PROTOCOL_ERROR', protocol);
        assert.ok(record.error.message.includes(`${utf8Name}`), `${protocol}: ${record.error.message}`);
      } else {
        assert.equal(record.error.code, 'BAD_TARGET', protocol);
        assert.ok(record.error.message.includes(`"${utf8Name}" is not an ASCII host name`), `${protocol}: ${record.error.message}`);
      }
      assert.doesNotMatch(JSON.stringify(record), /Ã/, protocol);
      c.destroy();
    }
    assert.equal(f.connector.targets.filter((t) => t.host.includes('b.test') && t.host !== 'web.test').length, 0, 'a non-ASCII name was dialled');
  });

  test('the unspecified address is refused the same way by every front, and nothing is dialled', async () => {
    const cases: Array<[string, Buffer | string]> = [
      ['socks5 0.0.0.0', Buffer.concat([Buffer.from([0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x01, 0, 0, 0, 0]), u16(80)])],
      ['socks5 ::', Buffer.concat([Buffer.from([0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x04]), Buffer.alloc(16), u16(80)])],
      ['socks5 name 0.0.0.0', Buffer.concat([Buffer.from([0x05, 0x01, 0x00]), socks5ConnectDomain('0.0.0.0', 80)])],
      ['socks4 0.0.0.0', Buffer.concat([Buffer.from([0x04, 0x01]), u16(80), Buffer.from([0, 0, 0, 0, 0])])],
      ['socks4a 0.0.0.0', socks4aConnect('0.0.0.0', 80)],
      ['CONNECT 0.0.0.0', 'CONNECT 0.0.0.0:80 HTTP/1.1\r\n\r\n'],
      ['CONNECT [::]', 'CONNECT [::]:80 HTTP/1.1\r\n\r\n'],
      ['GET 0.0.0.0', 'GET http://0.0.0.0:80/ HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['GET [::]', 'GET http://[::]/ HTTP/1.1\r\nHost: x\r\n\r\n'],
    ];
    const dialledBefore = f.connector.targets.length;
    for (const [what, bytes] of cases) {
      const before = f.records.length;
      const c = await RawClient.connect(f.port);
      c.write(bytes);
      const deadline = Date.now() + 3000;
      while (!f.records.slice(before).some((r) => r.error) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      const record = f.records.slice(before).find((r) => r.error);
      assert.equal(record?.error?.code, 'BAD_TARGET', what);
      assert.match(record?.error?.message ?? '', /is the unspecified address, not a destination; use 127\.0\.0\.1/, what);
      c.destroy();
    }
    assert.equal(f.connector.targets.length, dialledBefore, 'an unspecified address was dialled');
  });
});

describe('pipelining', () => {
  test(`500 pipelined requests on one connection: all answered in order, never more than ${PIPELINE_LIMIT} streams at once`, async () => {
    f.connector.maxOpen = 0;
    const c = await RawClient.connect(f.port);
    const n = 500;
    let requests = '';
    for (let i = 0; i < n; i++) requests += `GET http://web.test:${f.web.port}/i${i} HTTP/1.1\r\nHost: x\r\n\r\n`;
    c.write(requests);
    for (let i = 0; i < n; i++) {
      const head = await c.readUntil('\r\n\r\n', 20_000);
      const length = Number(/Content-Length: (\d+)/i.exec(head)?.[1]);
      const body = (await c.read(length, 20_000)).toString();
      assert.match(body, new RegExp(`"url":"/i${i}"`));
    }
    assert.ok(f.connector.maxOpen <= PIPELINE_LIMIT, `${f.connector.maxOpen} streams at once`);
    assert.ok(f.connector.maxOpen >= 1);
    c.destroy();
  });
});
