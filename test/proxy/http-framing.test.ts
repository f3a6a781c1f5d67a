/**
 * Absolute-form forwarding against a hostile backend and hostile clients:
 * responses whose framing the proxy cannot carry on a kept-alive connection
 * are close-delimited, an unasked-for 101 becomes 502, a request with a
 * transfer coding the proxy cannot frame is refused before anything is
 * dialled, and a response cut short upstream ends the client connection.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startHostileBackend } from '../helpers/hostile-backend.js';
import { RawClient, startProxyFixture, type ProxyFixture } from '../helpers/proxy-fixtures.js';

let f: ProxyFixture;
before(async () => {
  f = await startProxyFixture({ handshakeTimeoutMs: 3000 });
});
after(async () => {
  await f.close();
});

const web = (): string => `http://web.test:${f.web.port}`;

describe('upstream framing', () => {
  test('a response with a transfer coding other than a final chunked is close-delimited: Connection: close, then the connection ends', async () => {
    const backend = await startHostileBackend({ bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nGZIPPEDBYTES', after: 'close' });
    try {
      const c = await RawClient.connect(f.port);
      // A second request pipelined behind it, to another host: it must not become part of the first body.
      c.write(`GET http://127.0.0.1:${backend.port}/a HTTP/1.1\r\nHost: x\r\n\r\nGET ${web()}/second HTTP/1.1\r\nHost: x\r\n\r\n`);
      const all = (await c.readToEnd()).toString('latin1');
      const [head, body] = all.split('\r\n\r\n', 2) as [string, string];
      assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(head, /\r\nTransfer-Encoding: gzip\r\n/i);
      assert.match(head, /\r\nConnection: close(\r\n|$)/i);
      assert.equal(body, 'GZIPPEDBYTES');
    } finally {
      await backend.close();
    }
  });

  test('a response framed with chunked as the final coding stays on the kept-alive connection', async () => {
    const backend = await startHostileBackend({ bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', after: 'hold' });
    try {
      const c = await RawClient.connect(f.port);
      c.write(`GET http://127.0.0.1:${backend.port}/a HTTP/1.1\r\nHost: x\r\n\r\nGET ${web()}/after-chunked HTTP/1.1\r\nHost: x\r\n\r\n`);
      const first = await c.readUntil('0\r\n\r\n');
      assert.match(first, /\r\n\r\n3\r\nabc\r\n0\r\n\r\n$/);
      assert.doesNotMatch(first, /Connection: close/i);
      assert.match(await c.readUntil('}'), /"url":"\/after-chunked"/);
      c.destroy();
    } finally {
      await backend.close();
    }
  });

  test('an upstream 101 to a request that asked for no upgrade is answered 502 at once', async () => {
    const backend = await startHostileBackend({ bytes: 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: evil\r\n\r\nRAW', after: 'hold' });
    try {
      const c = await RawClient.connect(f.port);
      const started = Date.now();
      c.write(`GET http://127.0.0.1:${backend.port}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
      const head = await c.readUntil('\r\n\r\n', 2000);
      assert.match(head, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
      assert.match(head, /X-Kubesocks-Error: PROTOCOL_ERROR/);
      assert.ok(Date.now() - started < 2000);
      const record = f.records.findLast((r) => r.target === `127.0.0.1:${backend.port}`);
      assert.equal(record?.error?.code, 'PROTOCOL_ERROR');
      assert.match(record?.error?.message ?? '', /101 Switching Protocols to a request that asked for no upgrade/);
      c.destroy();
    } finally {
      await backend.close();
    }
  });

  test('a response cut short upstream ends the client connection: no keep-alive reuse, the next pipelined request is not answered', async () => {
    const backend = await startHostileBackend({ bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b', after: 'close' });
    try {
      const c = await RawClient.connect(f.port);
      c.write(`GET http://127.0.0.1:${backend.port}/ HTTP/1.1\r\nHost: x\r\n\r\nGET ${web()}/after-cut HTTP/1.1\r\nHost: x\r\n\r\n`);
      const all = (await c.readToEnd()).toString('latin1');
      assert.match(all, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nonly ten b$/);
      assert.doesNotMatch(all, /after-cut/, 'the next pipelined response was relayed on the broken connection');
      const record = f.records.findLast((r) => r.target === `127.0.0.1:${backend.port}`);
      assert.ok(record?.error, 'a cut-short response is logged as a failure');
    } finally {
      await backend.close();
    }
  });
});

describe('request transfer codings', () => {
  for (const te of ['xchunked', 'gzip', 'chunked, gzip', 'chunked, chunked']) {
    test(`Transfer-Encoding: ${te} is refused (501) before anything is dialled, and logged as a failure`, async () => {
      const before = f.connector.targets.length;
      const c = await RawClient.connect(f.port);
      c.write(`POST ${web()}/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${te}\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
      const all = (await c.readToEnd()).toString('latin1');
      assert.match(all, /^HTTP\/1\.1 (501 Not Implemented|400 Bad Request)\r\n/);
      assert.equal(f.connector.targets.length, before, 'a stream was opened');
      const record = f.records.at(-1);
      assert.ok(record?.error, 'logged as a success');
      assert.match(record.error.code, /^(NOT_IMPLEMENTED|PROTOCOL_ERROR)$/);
    });
  }

  for (const te of ['chunked', 'gzip, chunked']) {
    test(`Transfer-Encoding: ${te} is forwarded`, async () => {
      const c = await RawClient.connect(f.port);
      c.write(`POST ${web()}/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${te}\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
      await c.readUntil('"body":"hello"');
      c.destroy();
    });
  }
});
