/**
 * `kubesocks demo --clusters N` (issue 12): a second and third simulated
 * cluster behind their own contexts. Its printed hints name a host in each
 * context and work as printed; its PAC file sends each alias's names through
 * the proxy (evaluated as a browser would, and by headless Chromium loading
 * pages from every cluster).
 */
import * as assert from 'node:assert/strict';
import { runInNewContext } from 'node:vm';
import { after, before, describe, test } from 'node:test';
import { startDemo, type DemoProcess } from '../helpers/e2e-demo.js';
import { chromiumSkip, dumpDom } from '../helpers/chromium.js';
import { curl } from '../helpers/e2e-procs.js';

/** The PAC's FindProxyForURL, run with the standard helpers. */
function loadPac(text: string): (url: string, host: string) => string {
  const sandbox: Record<string, unknown> = {
    dnsDomainIs: (host: string, domain: string) => host.length >= domain.length && host.endsWith(domain),
    shExpMatch: (s: string, glob: string) => new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test(s),
  };
  runInNewContext(text, sandbox, { timeout: 1000 });
  return sandbox.FindProxyForURL as (url: string, host: string) => string;
}

for (const clusters of [2, 3] as const) {
  describe(`kubesocks demo --clusters ${clusters}`, () => {
    let demo: DemoProcess;
    const aliases = ['staging', 'prod'].slice(0, clusters - 1);
    before(async () => {
      demo = await startDemo(['--clusters', String(clusters), '-v']);
    });
    after(async () => {
      demo?.proc.kill();
      await demo?.proc.closed;
    });

    test('prints one line per context and hints with a name in each, which work as printed', async () => {
      assert.ok(demo.lines.some((l) => /^listening on 127\.0\.0\.1:\d+ \(\d contexts, default kubesocks-sim\)$/.test(l)), demo.lines.join('\n'));
      assert.ok(demo.lines.includes(`  context kubesocks-sim: cluster ${demo.clusterUrl}, namespace demo, default`), demo.lines.join('\n'));
      for (const alias of aliases) {
        assert.ok(demo.lines.some((l) => new RegExp(`^ {2}context ${alias}: cluster https://127\\.0\\.0\\.1:\\d+, namespace shop$`).test(l)), demo.lines.join('\n'));
      }
      // Run the curl hints that name a context's host, exactly as printed (after the proxy address).
      const hints = demo.lines.filter((l) => /^ {2}curl .*(\.kubesocks-sim\/|\.staging|\.prod|staging@|prod@)/.test(l) && !/SERVICE/.test(l));
      assert.ok(hints.length >= 2 + 2 * aliases.length, hints.join('\n'));
      for (const alias of aliases) {
        assert.ok(
          hints.some((h) => new RegExp(` http://[a-z0-9.-]+\\.${alias}(:\\d+)?/`).test(h)),
          `a hint names a host in ${alias}: ${hints.join('\n')}`,
        );
      }
      for (const hint of hints) {
        const args = hint
          .trim()
          .replace(/ +#.*$/, '')
          .split(/ +/)
          .slice(1);
        const r = await curl(['-f', ...args]);
        assert.equal(r.code, 0, `${hint}\n${r.output}`);
        assert.match(r.stdout, /^pod (web-\d|cart-(staging|prod)-\d) path \//, hint);
        for (const alias of aliases) {
          if (hint.includes(`.${alias}`) || hint.includes(`${alias}@`)) assert.match(r.stdout, new RegExp(`^pod cart-${alias}-\\d `), hint);
        }
      }
    });

    test('the PAC sends every alias form of every context through the proxy, other hosts DIRECT', async () => {
      const r = await curl([`http://${demo.proxy}/proxy.pac`]);
      const find = loadPac(r.stdout);
      const proxied = ['web.demo', 'web.demo.svc', 'web.demo.svc.cluster.local', 'web.demo.kubesocks-sim', 'db-0.db.demo.svc.kubesocks-sim'];
      for (const alias of aliases) {
        proxied.push(`cart.shop.${alias}`, `cart.shop.svc.${alias}`, `cart-${alias}-0.shop.${alias}`, `10-244-0-10.shop.pod.${alias}`);
      }
      for (const host of proxied) assert.match(find(`http://${host}/`, host), /^PROXY 127\.0\.0\.1:\d+; SOCKS5 /, host);
      // An alias alone, or after one label only, is no context name: `x.ALIAS` would be service x in namespace ALIAS.
      for (const host of ['example.com', ...aliases, ...aliases.map((a) => `shop.${a}`), 'kubesocks-sim', 'www.staging.example.com']) {
        assert.equal(find(`http://${host}/`, host), 'DIRECT', host);
      }
    });

    test('headless Chromium with the PAC loads a page from each cluster', { skip: chromiumSkip }, async () => {
      const pages: Array<[string, RegExp]> = [
        ['http://web.demo/', /pod web-[0-2] path \//],
        ['http://web.demo.kubesocks-sim/', /pod web-[0-2] path \//],
        ...aliases.map((a): [string, RegExp] => [`http://cart.shop.svc.${a}/`, new RegExp(`pod cart-${a}-[01] path /`)]),
      ];
      for (const [url, body] of pages) {
        const from = demo.proc.stderr.length;
        const { stdout } = await dumpDom(`--proxy-pac-url=http://${demo.proxy}/proxy.pac`, url);
        assert.match(stdout, body, url);
        const host = new URL(url).hostname.replace(/\./g, '\\.');
        await demo.proc.waitFor(new RegExp(`^kubesocks: \\S+ http\\S* ${host}:80 via `, 'm'), { stream: 'stderr', from, timeoutMs: 5000 });
      }
    });
  });
}
