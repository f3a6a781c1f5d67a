/**
 * The status page in headless Chromium (issue 13, "Done when"): loaded
 * from `kubesocks demo`'s own port, it shows the context, the pods and an
 * open connection; a connection opened afterwards appears without a
 * reload; its strict CSP lets its own script run and reports nothing; with
 * JavaScript off the server-rendered rows are there; and screenshots (light
 * and dark) are saved for a person to look at.
 *
 * Screenshots go to $KUBESOCKS_STATUS_SCREENSHOTS (a directory) or the
 * system temp directory; the paths are printed as test diagnostics.
 */
import * as assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Browser, type Page } from '../helpers/cdp.js';
import { startDemo, type DemoProcess } from '../helpers/e2e-demo.js';
import { CHROMIUM, chromiumSkip } from '../helpers/chromium.js';
import { roundTrip, rawSocks5Connect, socksConnect } from '../helpers/socks-client.js';

const SHOTS = process.env.KUBESOCKS_STATUS_SCREENSHOTS ?? tmpdir();

/** The text of each body row of a status table, cells joined by " | ". */
const rowsOf = (table: string): string =>
  `[...document.querySelectorAll('table[data-table="${table}"] tbody tr')].map((tr) => [...tr.cells].map((td) => td.textContent).join(' | '))`;

describe('the status page in headless Chromium, through `kubesocks demo`', { skip: chromiumSkip }, () => {
  let demo: DemoProcess;
  let browser: Browser;
  const sockets: Socket[] = [];

  before(async () => {
    demo = await startDemo();
    browser = await Browser.launch(CHROMIUM ?? 'chromium');
  });

  after(async () => {
    for (const s of sockets) s.destroy();
    await browser?.close();
    demo?.proc.kill();
    await demo?.proc.closed;
  });

  async function openEcho(host: string, port: number): Promise<Socket> {
    const socket = await socksConnect(demo.port, host, port);
    sockets.push(socket);
    assert.equal((await roundTrip(socket, Buffer.from('ping\n'))).toString(), 'ping\n');
    return socket;
  }

  test('rows for the context, the pod and the open connection; a new connection appears without reload; screenshots', async (t) => {
    await openEcho('echo.demo', 7);
    // A failure for the failures table.
    assert.equal((await rawSocks5Connect(demo.port, 'web-0.demo', 9090)).rep, 5);

    const page: Page = await browser.open(`http://127.0.0.1:${demo.port}/`);
    const contexts = await page.evaluate<string[]>(rowsOf('contexts'));
    assert.equal(contexts.length, 1, contexts.join('\n'));
    assert.match(contexts[0] ?? '', /^kubesocks-sim \| https:\/\/127\.0\.0\.1:\d+ \| admin \| yes \| — \| demo/);
    const pods = await page.evaluate<string[]>(rowsOf('pods'));
    assert.ok(pods.some((r) => /^kubesocks-sim \| demo \| echo-[01] \| (spdy|websocket) \| 1 \| 1 \| /.test(r)), pods.join('\n'));
    assert.ok(pods.some((r) => /^kubesocks-sim \| demo \| web-0 \| .* \| POD_REFUSED: /.test(r)), pods.join('\n'));
    const connections = await page.evaluate<string[]>(rowsOf('connections'));
    assert.equal(connections.length, 1, connections.join('\n'));
    assert.match(connections[0] ?? '', /^127\.0\.0\.1:\d+ \| socks5 \| echo\.demo:7 \| demo\/echo-[01]:7 \| 5 B \| 5 B \| /);
    const failures = await page.evaluate<string[]>(rowsOf('failures'));
    assert.match(failures[0] ?? '', /^\d\d:\d\d:\d\d \| socks5 \| 127\.0\.0\.1:\d+ \| web-0\.demo:9090 \| POD_REFUSED \| /);

    // The script runs under the CSP: it reports itself live.
    await page.waitFor(`document.getElementById('live').className === 'on'`, 5000);
    // What the script renders from /status.json equals what the server rendered (stable columns).
    assert.deepEqual(await page.evaluate<string[]>(rowsOf('contexts')), contexts);

    await page.evaluate('window.__sameDocument = true');
    const newTarget = 'db-0.db.demo.svc.cluster.local:5432';
    await openEcho('db-0.db.demo.svc.cluster.local', 5432);
    const opened = performance.now();
    await page.waitFor(`${rowsOf('connections')}.some((r) => r.includes(${JSON.stringify(newTarget)}))`, 5000);
    const latencyMs = Math.round(performance.now() - opened);
    t.diagnostic(`the new connection appeared on the page ${latencyMs} ms after it was established (poll interval 500 ms)`);
    assert.equal(await page.evaluate('window.__sameDocument === true'), true, 'the page was not reloaded');
    assert.equal(await page.evaluate(`document.querySelector('[data-count="connections"]').textContent`), '(2)');

    const problems = page.messages().filter((m) => /Content.Security.Policy|Refused|error/i.test(m));
    assert.deepEqual(problems, [], 'no CSP violation or script error');

    await mkdir(SHOTS, { recursive: true });
    const light = await page.screenshot(1280, 800);
    await page.send('Emulation.setEmulatedMedia', { features: [{ name: 'prefers-color-scheme', value: 'dark' }] });
    assert.equal(await page.evaluate(`getComputedStyle(document.body).backgroundColor`), 'rgb(19, 22, 27)', 'dark mode applies');
    const dark = await page.screenshot(1280, 800);
    for (const [name, png] of [
      ['kubesocks-status.png', light],
      ['kubesocks-status-dark.png', dark],
    ] as const) {
      assert.equal(png.subarray(1, 4).toString(), 'PNG');
      assert.ok(png.length > 20_000, `${name}: ${png.length} bytes is too small for a rendered page`);
      const file = join(SHOTS, name);
      await writeFile(file, png);
      t.diagnostic(`screenshot: ${file}`);
    }
  });

  test('with JavaScript off, the server-rendered snapshot has the rows', async () => {
    await openEcho('echo.demo', 7);
    const page = await browser.open('about:blank');
    await page.send('Emulation.setScriptExecutionDisabled', { value: true });
    await page.goto(`http://127.0.0.1:${demo.port}/`);
    const connections = await page.evaluate<string[]>(rowsOf('connections'));
    assert.ok(connections.some((r) => r.includes('echo.demo:7')), connections.join('\n'));
    assert.match(await page.evaluate<string>(`document.getElementById('live').textContent`), /^snapshot at \d\d:\d\d:\d\d UTC$/);
  });
});
