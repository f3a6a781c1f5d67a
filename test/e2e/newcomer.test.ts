/**
 * A newcomer following `kubesocks demo`'s printed hints (issue 4, "A new user
 * following the README … then the printed hints reaches every demo
 * service"): every `curl …` line the demo prints is run as printed — with
 * the real port, through bash, with a deadline — and must succeed, except
 * the one labelled as a port where nothing listens, which must show the
 * kubelet's reason.
 */
import * as assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { demoScenario } from '../../src/sim/scenario.js';
import { startDemo, type DemoProcess } from '../helpers/e2e-demo.js';
import { cleanEnv, findBinary, run, type RunResult } from '../helpers/e2e-procs.js';

const curlBin = findBinary('curl');
const bash = findBinary('/bin/bash', 'bash');
const HINT_TIMEOUT_MS = 8000;

interface Hint {
  /** The line as printed (without the `kubesocks:` prefix). */
  line: string;
  /** The shell command: the line without its trailing `(explanation)` or `# explanation`. */
  command: string;
  /** The explanation, if any. */
  label: string;
}

/** The hint lines that run curl, split into command and label. */
function curlHints(lines: readonly string[]): Hint[] {
  return lines
    .map((l) => l.trim())
    .filter((l) => /(^|\s)curl\s/.test(l))
    .map((line) => {
      // `command   (explanation)` or `command   # explanation`
      const m = /^(.*?\S)\s{2,}\((.*)\)$/.exec(line) ?? /^(.*?\S)\s+#\s*(.*)$/.exec(line);
      const command = m?.[1] ?? line;
      return { line, command, label: m?.[2] ?? '' };
    });
}

const isRefusedHint = (h: Hint): boolean => /nothing listens|refused/i.test(h.label);

/** Why a hint's run does not count as a success; undefined when it does. */
function verdict(h: Hint, res: RunResult): string | undefined {
  if (res.timedOut) return `did not finish within ${HINT_TIMEOUT_MS} ms (killed)`;
  if (isRefusedHint(h)) {
    const reason = /error forwarding port \d+ to pod [a-z0-9-]+, uid [0-9a-f-]+: .*connection refused/;
    return reason.test(res.stdout + res.stderr) ? undefined : "the kubelet's reason is not shown";
  }
  const echoed = /^(?:echo|printf)\s+['"]?([A-Za-z0-9][\w-]*)/.exec(h.command)?.[1];
  // A hint that bounds itself with curl's --max-time/-m ends with 28 by design once the echo is back.
  const bounded = /\scurl\s(?:.*\s)?(?:--max-time|-m)\s/.test(` ${h.command}`) && res.code === 28 && echoed !== undefined;
  if (res.code !== 0 && !bounded) return `exit ${res.code}`;
  if (res.stdout.trim() === '') return 'no output';
  const target = h.command.replace(/-x\s+http:\/\/\S+/, '');
  if (/\bhttps?:\/\//.test(target) && !/^pod [a-z0-9-]+ path \//.test(res.stdout)) return 'the body does not name a pod';
  if (echoed !== undefined && !res.stdout.includes(echoed)) return `"${echoed}" was not echoed`;
  return undefined;
}

describe('a newcomer runs the hints `kubesocks demo` prints', { skip: (!curlBin && 'curl is not installed') || (!bash && 'bash is not installed') }, () => {
  let demo: DemoProcess;
  let cwd: string;
  let hints: Hint[] = [];
  const results = new Map<string, Promise<RunResult>>();

  const sh = (command: string): Promise<RunResult> => run(bash ?? 'bash', ['-c', command], { cwd, env: cleanEnv(), timeoutMs: HINT_TIMEOUT_MS });

  before(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'kubesocks-e2e-newcomer-'));
    demo = await startDemo();
    hints = curlHints(demo.lines);
    // All at once: each has its own deadline, and a hanging one must not hold up the rest.
    for (const h of hints) results.set(h.line, sh(h.command));
  });

  after(async () => {
    await Promise.allSettled(results.values());
    demo?.proc.kill();
    await demo?.proc.closed;
    if (cwd) await rm(cwd, { recursive: true, force: true });
  });

  test('the demo prints curl hints carrying the real proxy port, one of them for a refused port', () => {
    assert.ok(hints.length >= 5, `expected several curl hints, got:\n${demo.lines.join('\n')}`);
    for (const h of hints) assert.ok(h.command.includes(demo.proxy), `a hint without the real address ${demo.proxy}: ${h.line}`);
    const placeholders = demo.lines.filter((l) => /\b(SERVICE|NAMESPACE|POD|PORT)\b/.test(l));
    assert.deepEqual(placeholders, [], 'demo hints must work when pasted: no placeholders');
    assert.equal(hints.filter(isRefusedHint).length, 1, `one hint labelled as a refused port:\n${hints.map((h) => h.line).join('\n')}`);
  });

  test('every curl hint succeeds: exit 0 and output (the refused-port one shows the kubelet\'s reason)', async () => {
    const verdicts = await Promise.all(
      hints.map(async (h): Promise<string | undefined> => {
        const res = await (results.get(h.line) ?? sh(h.command));
        const why = verdict(h, res);
        if (!why) return undefined;
        let note = '';
        if (res.timedOut) {
          // Did it reach the service and merely never end? The same command with a deadline tells.
          const bounded = await sh(h.command.replace(/(^|\s)curl\s/, '$1curl --max-time 2 '));
          note = `\n    with curl --max-time 2 added it printed ${JSON.stringify(bounded.stdout)} and exited ${bounded.code}`;
        }
        const out = `exit ${res.code}${res.signal ? ` (${res.signal})` : ''}, stdout ${JSON.stringify(res.stdout.slice(0, 300))}, stderr ${JSON.stringify(res.stderr.slice(0, 300))}`;
        return `${why}\n    hint: ${h.line}\n    ran:  ${h.command}\n    ${out}${note}`;
      }),
    );
    const failures = verdicts.filter((v) => v !== undefined);
    assert.equal(failures.length, 0, `${failures.length} of ${hints.length} hints failed:\n${failures.join('\n')}`);
  });

  test('every hint line can be pasted into bash as printed (explanations do not break the syntax)', async () => {
    const lines = demo.lines.map((l) => l.trim()).filter((l) => /(^|\s)curl\s|^export\s/.test(l));
    const broken: string[] = [];
    for (const line of lines) {
      const res = await run(bash ?? 'bash', ['-n', '-c', line], { cwd, env: cleanEnv(), timeoutMs: 5000 });
      if (res.code !== 0) broken.push(`${line}\n    ${res.stderr.trim()}`);
    }
    assert.equal(broken.length, 0, `${broken.length} of ${lines.length} hint lines are a bash syntax error when pasted whole:\n${broken.join('\n')}`);
  });

  test('the export ALL_PROXY hint makes plain curl reach the demo', async () => {
    const exportLine = demo.lines.map((l) => l.trim()).find((l) => /^export ALL_PROXY=\S+$/.test(l));
    assert.ok(exportLine, `no "export ALL_PROXY=…" hint:\n${demo.lines.join('\n')}`);
    const res = await sh(`${exportLine}; curl -sS --max-time 5 http://web.demo/newcomer`);
    assert.equal(res.code, 0, res.output);
    assert.match(res.stdout, /^pod web-[0-2] path \/newcomer/);
  });

  test('the PAC file the demo points a browser at is served', async () => {
    const url = demo.lines.map((l) => /\b(http:\/\/\S+\/proxy\.pac)\b/.exec(l)?.[1]).find((u) => u !== undefined);
    assert.ok(url, `no PAC URL among the hints:\n${demo.lines.join('\n')}`);
    const res = await sh(`curl -sS --max-time 5 ${url}`);
    assert.equal(res.code, 0, res.output);
    assert.match(res.stdout, /function FindProxyForURL/);
  });

  test('the hints reach every service in namespace demo that has pods behind it', () => {
    const scenario = demoScenario();
    const text = hints.map((h) => h.command).join('\n');
    const missing = scenario.services
      .filter((s) => s.namespace === 'demo' && s.type !== 'ExternalName' && s.externalName === undefined)
      .filter((s) => !new RegExp(`(^|[/.@\\s])${s.name}\\.${s.namespace}([.:/\\s]|$)`, 'm').test(text))
      .map((s) => `${s.name}.${s.namespace}`);
    assert.deepEqual(missing, [], `services no hint reaches: ${missing.join(', ')}\n${hints.map((h) => h.line).join('\n')}`);
  });
});
