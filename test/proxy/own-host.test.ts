/**
 * DNS rebinding: the proxy's own pages answer only requests whose Host names
 * the proxy itself; a page on another name that re-resolved to 127.0.0.1 gets
 * 403 and learns nothing (no namespace list from the PAC, no status).
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isOwnHost } from '../../src/proxy/own-host.js';
import { RawClient, startProxyFixture, type ProxyFixture } from '../helpers/proxy-fixtures.js';

describe('isOwnHost', () => {
  test('loopback addresses, localhost and the own addresses are ours, with or without a port', () => {
    for (const host of ['127.0.0.1', '127.0.0.1:1080', '127.5.6.7:80', 'localhost', 'LOCALHOST:1080', 'localhost.', '[::1]', '[::1]:1080', '[::ffff:127.0.0.1]:1080', '192.168.1.5:1080']) {
      assert.equal(isOwnHost(host, ['192.168.1.5']), true, host);
    }
  });

  test('other names and addresses, rebinding tricks and malformed values are not', () => {
    for (const host of [
      undefined,
      '',
      'evil.example',
      'evil.example:1080',
      '127.0.0.1.nip.io',
      'localhost.evil.example',
      '127.0.0.1@evil.example',
      '127.0.0.1 evil',
      '10.0.0.1:1080',
      '[::2]:1080',
      '0.0.0.0',
      '[::]:1080',
      'example.com, 127.0.0.1',
    ]) {
      assert.equal(isOwnHost(host, ['192.168.1.5', '0.0.0.0']), false, String(host));
    }
    assert.equal(isOwnHost('192.168.1.5', [undefined, '']), false);
  });
});

describe('the proxy pages check Host', () => {
  let f: ProxyFixture;
  before(async () => {
    f = await startProxyFixture();
  });
  after(async () => {
    await f.close();
  });

  async function get(path: string, host: string | null, version = '1.1'): Promise<{ status: number; body: string }> {
    const c = await RawClient.connect(f.port);
    c.write(`GET ${path} HTTP/${version}\r\n${host === null ? '' : `Host: ${host}\r\n`}Connection: close\r\n\r\n`);
    const text = (await c.readToEnd()).toString();
    c.destroy();
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
    return { status, body: text.slice(text.indexOf('\r\n\r\n') + 4) };
  }

  test('a rebinding page (Host: its own name) gets 403 for every page, and no namespace names', async () => {
    for (const path of ['/proxy.pac', '/healthz', '/readyz', '/', '/status.json', '/metrics', '/anything']) {
      for (const host of [`evil.example:${f.port}`, 'evil.example', `127.0.0.1.nip.io:${f.port}`]) {
        const res = await get(path, host);
        assert.equal(res.status, 403, `${path} with Host ${host}`);
        assert.match(res.body, /^forbidden: kubesocks serves its own pages only to requests addressed to it .*\n$/);
        assert.doesNotMatch(res.body, /demo|suffixes/);
      }
    }
    assert.equal((await get('/proxy.pac', null, '1.0')).status, 403, 'no Host at all');
  });

  test('the proxy addressed by loopback address, localhost or [::1] answers', async () => {
    for (const host of [`127.0.0.1:${f.port}`, `localhost:${f.port}`, 'localhost', `[::1]:${f.port}`]) {
      assert.equal((await get('/healthz', host)).status, 200, host);
      assert.equal((await get('/proxy.pac', host)).status, 200, host);
    }
  });
});
