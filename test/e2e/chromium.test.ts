/**
 * Headless Chromium through `kubesocks demo` (issue 4, "Done when"): with
 * `--proxy-server=socks5://…`, and again with the proxy's own PAC file, it
 * loads http://web.demo.svc.cluster.local/ and the page names a web pod.
 */
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startDemo, type DemoProcess } from '../helpers/e2e-demo.js';
import { chromiumSkip, dumpDom } from '../helpers/chromium.js';

const URL_UNDER_TEST = 'http://web.demo.svc.cluster.local/';

describe('headless Chromium through `kubesocks demo`', { skip: chromiumSkip }, () => {
  let demo: DemoProcess;

  before(async () => {
    demo = await startDemo(['-v']);
  });

  after(async () => {
    demo?.proc.kill();
    await demo?.proc.closed;
  });

  /** The proxy's -v log (printed when a connection ends) shows the page went through it. */
  const logged = (re: RegExp, from: number): Promise<RegExpMatchArray> => demo.proc.waitFor(re, { stream: 'stderr', from, timeoutMs: 5000 });
  const PAGE_LINE = /^kubesocks: \S+ (?:socks5|http\S*) web\.demo\.svc\.cluster\.local:80 via demo\/web-[0-2]:8080 /m;

  test('--proxy-server=socks5://127.0.0.1:PORT loads the page and it names a web pod', async () => {
    const from = demo.proc.stderr.length;
    const dom = await dumpDom(`--proxy-server=socks5://${demo.proxy}`, URL_UNDER_TEST);
    assert.match(dom.stdout, /pod web-[0-2] path \/(?!\S)/, dom.output);
    const line = await logged(PAGE_LINE, from);
    assert.match(line[0], / socks5 /, 'Chromium spoke SOCKS5');
  });

  test('--proxy-pac-url=http://127.0.0.1:PORT/proxy.pac loads the page and it names a web pod', async () => {
    const from = demo.proc.stderr.length;
    const dom = await dumpDom(`--proxy-pac-url=http://${demo.proxy}/proxy.pac`, URL_UNDER_TEST);
    assert.match(dom.stdout, /pod web-[0-2] path \/(?!\S)/, dom.output);
    await logged(/^kubesocks: \S+ http \/proxy\.pac /m, from);
    await logged(PAGE_LINE, from);
  });
});
