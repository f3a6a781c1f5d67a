/**
 * `kubesocks --context A --context B`, `--all-contexts`, `--alias`: the
 * start-up lines (one per context), alias collisions as one-line start-up
 * errors, and lazy contexts (thirty exec-plugin contexts start at once and
 * run no plugin). The start-up time itself is measured by `npm run bench`
 * (bench/contexts-startup.ts); here only a generous bound guards a hang.
 */
import * as assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Proc, cleanEnv, run } from '../helpers/e2e-procs.js';
import { kubeconfigFor, type ContextSpec } from '../helpers/multi-cluster.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubesocks-cli-contexts-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeConfig(name: string, specs: ContextSpec[]): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, kubeconfigFor(specs), { mode: 0o600 });
  return file;
}

/** Starts `kubesocks ARGS --listen 127.0.0.1:0`, waits for its hints, stops it; the lines it printed. */
async function startupLines(args: string[]): Promise<{ lines: string[]; ms: number }> {
  const started = performance.now();
  const proc = new Proc(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args, '--listen', '127.0.0.1:0'], { env: cleanEnv() });
  try {
    await proc.waitFor(/listening on 127\.0\.0\.1:\d+/, { stream: 'stderr', timeoutMs: 30_000 });
    const ms = performance.now() - started;
    await proc.waitFor(/browser PAC file/, { stream: 'stderr', timeoutMs: 10_000 });
    // Until it goes quiet: every start-up line is in.
    for (let seen = -1; seen !== proc.stderr.length; ) {
      seen = proc.stderr.length;
      await new Promise((r) => setTimeout(r, 300));
    }
    return { lines: proc.stderr.split('\n').filter((l) => l.startsWith('kubesocks: ')).map((l) => l.slice('kubesocks: '.length)), ms };
  } finally {
    proc.signal('SIGTERM');
    await proc.settle(8000);
  }
}

describe('several contexts on the command line', () => {
  test('--context repeated: the first is the default; one line per context with alias, context, cluster and namespace', async () => {
    const file = await writeConfig('two', [
      { name: 'kind-dev', server: 'https://127.0.0.1:1', namespace: 'dev-ns' },
      { name: 'gke_proj_zone_Staging', server: 'https://127.0.0.1:2' },
      { name: 'unused', server: 'https://127.0.0.1:3' },
    ]);
    const { lines } = await startupLines(['--kubeconfig', file, '--context', 'gke_proj_zone_Staging', '--context', 'kind-dev', '--alias', 'stg=gke_proj_zone_Staging']);
    const at = lines.findIndex((l) => l.startsWith('listening on'));
    assert.match(lines[at] ?? '', /^listening on 127\.0\.0\.1:\d+ \(2 contexts, default stg\)$/);
    assert.deepEqual(lines.slice(at + 1, at + 3), [
      '  context stg (gke_proj_zone_Staging): cluster https://127.0.0.1:2, namespace team, default',
      '  context kind-dev: cluster https://127.0.0.1:1, namespace dev-ns',
    ]);
    assert.ok(lines.some((l) => /curl -x http:\/\/127\.0\.0\.1:\d+ http:\/\/SERVICE\.NAMESPACE\.kind-dev\//.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /curl -x http:\/\/kind-dev@127\.0\.0\.1:\d+ http:\/\/SERVICE\.NAMESPACE\//.test(l)), lines.join('\n'));
  });

  test('an alias collision stops start-up with one line naming the --alias that fixes it', async () => {
    const file = await writeConfig('collide', [
      { name: 'kind_dev', server: 'https://127.0.0.1:1' },
      { name: 'kind-dev', server: 'https://127.0.0.1:2' },
    ]);
    const r = await run(process.execPath, ['--import', 'tsx', 'src/cli.ts', '--kubeconfig', file, '--all-contexts', '--listen', '127.0.0.1:0'], { env: cleanEnv() });
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim(), 'kubesocks: contexts "kind_dev" and "kind-dev" both get the alias "kind-dev": name one with --alias NAME=kind-dev [CONFIG]');
    const fixed = await startupLines(['--kubeconfig', file, '--all-contexts', '--alias', 'kd=kind_dev']);
    assert.ok(fixed.lines.includes('  context kd (kind_dev): cluster https://127.0.0.1:1, namespace team, default'), fixed.lines.join('\n'));
  });

  test('--alias with a bad name or for a context not served: one line, exit 1', async () => {
    const file = await writeConfig('one', [{ name: 'a', server: 'https://127.0.0.1:1' }]);
    for (const [alias, re] of [
      ['svc=a', /the alias "svc" is reserved/],
      ['x=b', /context "b" is not served \(add --context b, or --all-contexts\)/],
    ] as const) {
      const r = await run(process.execPath, ['--import', 'tsx', 'src/cli.ts', '--kubeconfig', file, '--alias', alias, '--listen', '127.0.0.1:0'], { env: cleanEnv() });
      assert.equal(r.code, 1, r.output);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    }
  });

  test('--all-contexts with 30 exec-plugin contexts starts without running a plugin or contacting a server', async () => {
    const markers = Array.from({ length: 30 }, (_, i) => join(dir, `ran-${i}`));
    // Servers where nothing listens: a contact would only fail, but no plugin must run either.
    const file = await writeConfig(
      'thirty',
      markers.map((m, i) => ({ name: `arn:aws:eks:eu-west-1:123456789012:cluster/c${i}`, server: `https://127.0.0.1:${i + 1}`, execMarker: m })),
    );
    const { lines, ms } = await startupLines(['--kubeconfig', file, '--all-contexts']);
    assert.equal(lines.filter((l) => /^ {2}context arn-aws-eks-eu-west-1-123456789012-cluster-c\d+ \(arn:aws:eks:/.test(l)).length, 30, lines.join('\n'));
    assert.equal(markers.filter((m) => existsSync(m)).length, 0, 'no exec plugin ran');
    // Generous: tsx compiles the CLI on the fly and the machine is shared. bench/contexts-startup.ts measures.
    assert.ok(ms < 20_000, `start-up took ${Math.round(ms)} ms`);
  });

  test('a broken context among --all-contexts is listed as unusable and does not stop the others', async () => {
    const file = join(dir, 'broken');
    await writeFile(
      file,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        'current-context': 'good',
        clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1' } }],
        users: [{ name: 'u', user: { token: 't' } }],
        contexts: [
          { name: 'good', context: { cluster: 'c', user: 'u' } },
          { name: 'nocluster', context: { cluster: 'gone', user: 'u' } },
        ],
      }),
    );
    const { lines } = await startupLines(['--kubeconfig', file, '--all-contexts']);
    assert.ok(
      lines.some((l) => /^ {2}context nocluster: unusable, its names fail: context "nocluster" refers to cluster "gone"/.test(l)),
      lines.join('\n'),
    );
  });
});
