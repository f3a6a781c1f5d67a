/**
 * Headless Chromium through `kubesocks demo` (issue 4, "Done when"): with
 * `--proxy-server=socks5://…`, and again with the proxy's own PAC file, it
 * loads http://web.demo.svc.cluster.local/ and the page names a web pod.
 */
import * as assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDemo, type DemoProcess } from '../helpers/e2e-demo.js';
import { Proc, cleanEnv, findBinary } from '../helpers/e2e-procs.js';

const chromium = findBinary('/usr/bin/chromium', 'chromium', 'chromium-browser', 'google-chrome');
const URL_UNDER_TEST = 'http://web.demo.svc.cluster.local/';

describe('headless Chromium through `kubesocks demo`', { skip: !chromium && 'chromium is not installed' }, () => {
  let demo: DemoProcess;
  const dirs: string[] = [];
  const procs: Proc[] = [];

  /** Runs Chromium with `--dump-dom` and a fresh profile; its stdout is the DOM. */
  async function dumpDom(proxyFlag: string): Promise<Proc> {
    const profile = await mkdtemp(join(tmpdir(), 'kubesocks-e2e-chromium-'));
    dirs.push(profile);
    const proc = new Proc(
      chromium ?? 'chromium',
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-dev-shm-usage',
        // Fewer of Chromium's own requests to Google (they would go DIRECT or fail).
        '--disable-default-apps',
        '--disable-domain-reliability',
        '--no-pings',
        '--metrics-recording-only',
        '--disable-client-side-phishing-detection',
        `--user-data-dir=${profile}`,
        proxyFlag,
        '--timeout=15000',
        '--dump-dom',
        URL_UNDER_TEST,
      ],
      { env: cleanEnv({ HOME: profile }) },
    );
    procs.push(proc);
    const exit = await proc.settle(25_000);
    assert.equal(exit.timedOut, false, `chromium did not finish within 25 s\n${proc.output}`);
    return proc;
  }

  before(async () => {
    demo = await startDemo(['-v']);
  });

  after(async () => {
    for (const p of procs) p.kill();
    await Promise.all(procs.map((p) => p.closed));
    demo?.proc.kill();
    await demo?.proc.closed;
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  /** The proxy's -v log (printed when a connection ends) shows the page went through it. */
  const logged = (re: RegExp, from: number): Promise<RegExpMatchArray> => demo.proc.waitFor(re, { stream: 'stderr', from, timeoutMs: 5000 });
  const PAGE_LINE = /^kubesocks: \S+ (?:socks5|http\S*) web\.demo\.svc\.cluster\.local:80 via demo\/web-[0-2]:8080 /m;

  test('--proxy-server=socks5://127.0.0.1:PORT loads the page and it names a web pod', async () => {
    const from = demo.proc.stderr.length;
    const proc = await dumpDom(`--proxy-server=socks5://${demo.proxy}`);
    assert.match(proc.stdout, /pod web-[0-2] path \/(?!\S)/, proc.output);
    const line = await logged(PAGE_LINE, from);
    assert.match(line[0], / socks5 /, 'Chromium spoke SOCKS5');
  });

  test('--proxy-pac-url=http://127.0.0.1:PORT/proxy.pac loads the page and it names a web pod', async () => {
    const from = demo.proc.stderr.length;
    const proc = await dumpDom(`--proxy-pac-url=http://${demo.proxy}/proxy.pac`);
    assert.match(proc.stdout, /pod web-[0-2] path \/(?!\S)/, proc.output);
    await logged(/^kubesocks: \S+ http \/proxy\.pac /m, from);
    await logged(PAGE_LINE, from);
  });
});
