/**
 * `npm run bench:contexts [-- --runs N]`: how long `kubesocks --all-contexts`
 * takes to print its ready line with a kubeconfig of 30 contexts (issue 12:
 * "30 contexts start instantly", under 1 s), next to the same kubeconfig
 * with one context, and that no exec plugin ran. Each context's user is an
 * exec plugin that leaves a file behind, and each server is a port where
 * nothing listens: a context touched at start-up would show.
 *
 * Runs the built CLI (dist/cli.js, as users run it) as a child process and
 * times spawn → `listening on` on stderr, the two kinds of run interleaved.
 * Wall time on a shared machine mostly measures the load, so the CPU time
 * the process had used when it printed the line (/proc/PID/stat utime +
 * stime, Linux) is reported too: that is what the 30 contexts cost.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { kubeconfigFor } from '../test/helpers/multi-cluster.js';
import { ROOT } from './lib/harness.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '9' }, contexts: { type: 'string', default: '30' } } });
const runs = Math.max(1, Number(values.runs) || 9);
const count = Math.max(1, Number(values.contexts) || 30);

/** CPU milliseconds (user + system) a process used so far; NaN off Linux. */
function cpuMs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of proc(5), counted from the state field (3): utime, stime in clock ticks (100 Hz).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

interface Start {
  wallMs: number;
  cpuMs: number;
}

function startOnce(args: string[]): Promise<Start> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'cli.js'), ...args, '--listen', '127.0.0.1:0'], {
      env: { PATH: process.env.PATH ?? '', HOME: tmpdir() },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      err += s;
      if (/listening on 127\.0\.0\.1:\d+/.test(err)) {
        const wallMs = performance.now() - started;
        const cpu = cpuMs(child.pid);
        child.kill('SIGKILL');
        resolve({ wallMs, cpuMs: cpu });
      }
    });
    child.on('exit', (code) => {
      if (!/listening on/.test(err)) reject(new Error(`kubesocks exited ${code} before it was ready:\n${err}`));
    });
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

const dir = await mkdtemp(join(tmpdir(), 'kubesocks-bench-contexts-'));
try {
  const markers = Array.from({ length: count }, (_, i) => join(dir, `exec-ran-${i}`));
  const file = join(dir, 'kubeconfig');
  await writeFile(
    file,
    kubeconfigFor(markers.map((m, i) => ({ name: `arn:aws:eks:eu-west-1:123456789012:cluster/c${i}`, server: `https://127.0.0.1:${i + 1}`, execMarker: m }))),
    { mode: 0o600 },
  );
  const all: Start[] = [];
  const one: Start[] = [];
  await startOnce(['--kubeconfig', file]); // warm the file cache
  for (let i = 0; i < runs; i++) {
    one.push(await startOnce(['--kubeconfig', file]));
    all.push(await startOnce(['--kubeconfig', file, '--all-contexts']));
  }
  const ran = markers.filter((m) => existsSync(m)).length;
  const stat = (xs: number[]): string => `median ${Math.round(median(xs))} ms (min ${Math.round(Math.min(...xs))}, max ${Math.round(Math.max(...xs))})`;
  const fmt = (xs: Start[]): string => `wall ${stat(xs.map((x) => x.wallMs))}; CPU ${stat(xs.map((x) => x.cpuMs))}`;
  process.stdout.write(
    [
      `kubesocks start-up to "listening on", ${runs} interleaved runs each, node ${process.version}`,
      `  1 context:                  ${fmt(one)}`,
      `  --all-contexts, ${count} contexts: ${fmt(all)}`,
      `  exec plugins run: ${ran} of ${count}`,
      `  load average at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
      '',
    ].join('\n'),
  );
  if (ran > 0) process.exitCode = 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}
