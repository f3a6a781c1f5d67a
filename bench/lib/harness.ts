/**
 * The processes a benchmark run is made of, and how to start them:
 *
 * - the simulated cluster (bench/sim-process.ts) — API server over TLS,
 *   kubelet, and the source/echo/sink backend servers;
 * - kubesocks as its users run it: `node dist/cli.js serve` against the
 *   simulator's kubeconfig (optionally under --cpu-prof);
 * - real `kubectl port-forward`.
 *
 * Each is a separate OS process so /proc gives its own CPU time and RSS.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SimCounters } from '../../src/sim/types.js';
import type { SimReady } from '../sim-process.js';
import type { Address } from './client.js';
import { sample, start } from './procs.js';
import type { Child, ProcSample } from './procs.js';
import { NS, benchScenario } from './scenario.js';
import type { ScenarioSizes } from './scenario.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist', 'cli.js');

/** Progress goes to stderr; stdout carries only the report. */
export function log(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

export interface Sim {
  child: Child;
  ready: SimReady;
  kubeconfig: string;
  counters(): Promise<SimCounters>;
  resetCounters(): Promise<void>;
}

export async function startSim(dir: string, sizes: ScenarioSizes, runtime?: 'containerd'): Promise<Sim> {
  const scenarioFile = join(dir, 'scenario.json');
  const kubeconfig = join(dir, 'kubeconfig');
  await writeFile(scenarioFile, JSON.stringify(benchScenario(sizes)));
  const args = ['--import', 'tsx', join(ROOT, 'bench', 'sim-process.ts'), scenarioFile, kubeconfig, ...(runtime ? [runtime] : [])];
  const child = start('simulator', process.execPath, args, { cwd: ROOT, ...(runtime ? { stopGraceMs: 30_000 } : {}) });
  // Real sandboxes: containerd's start plus every pod's sandbox.
  const [line] = await child.waitFor(/^\{.*\}$/m, runtime ? 120_000 : 30_000);
  const ready = JSON.parse(line) as SimReady;
  const control = async (method: string, path: string): Promise<Response> => {
    const response = await fetch(`${ready.controlUrl}${path}`, { method, signal: AbortSignal.timeout(10_000) });
    if (!response.ok) throw new Error(`simulator control ${method} ${path}: HTTP ${response.status}`);
    return response;
  };
  return {
    child,
    ready,
    kubeconfig,
    counters: async () => (await (await control('GET', '/counters')).json()) as SimCounters,
    resetCounters: async () => {
      await control('POST', '/counters/reset');
    },
  };
}

export interface Kubesocks {
  child: Child;
  proxy: Address;
  sample(): ProcSample | undefined;
}

/** `node dist/cli.js serve` against the simulator; `profileDir` runs it under --cpu-prof. */
export async function startKubesocks(sim: Sim, name: string, profileDir?: string, extra: { args?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<Kubesocks> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
  const nodeFlags = ['--import', join(ROOT, 'bench', 'lib', 'exit-with-parent.mjs'), ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [])];
  if (profileDir) await mkdir(profileDir, { recursive: true });
  const child = start(name, process.execPath, [...nodeFlags, CLI, 'serve', '--kubeconfig', sim.kubeconfig, '--listen', '127.0.0.1:0', '-n', NS, ...(extra.args ?? [])], {
    cwd: ROOT,
    ...(extra.env ? { env: { ...process.env, ...extra.env } } : {}),
  });
  const m = await child.waitFor(/listening on ([\d.]+):(\d+)/, 30_000);
  return { child, proxy: { host: m[1]!, port: Number(m[2]) }, sample: () => sample(child.pid) };
}

/** Path of kubectl, or undefined when there is none (its rows are then skipped). */
export function findKubectl(): string | undefined {
  const candidates = [process.env.KUBECTL, '/usr/bin/kubectl', '/usr/local/bin/kubectl'];
  for (const c of candidates) if (c && existsSync(c)) return c;
  try {
    return execFileSync('sh', ['-c', 'command -v kubectl'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export function kubectlVersion(kubectl: string | undefined): string | undefined {
  if (!kubectl) return undefined;
  try {
    const out = execFileSync(kubectl, ['version', '--client', '-o', 'json'], { encoding: 'utf8', timeout: 10_000 });
    const parsed = JSON.parse(out) as { clientVersion?: { gitVersion?: string } };
    return parsed.clientVersion?.gitVersion;
  } catch {
    return undefined;
  }
}

export interface PortForward {
  child: Child;
  /** Remote port → local address. */
  ports: Map<number, Address>;
  sample(): ProcSample | undefined;
}

/**
 * `kubectl port-forward TARGET :P…` on 127.0.0.1; resolves once every port
 * is forwarded. `readyMs` is the time from spawn to that point.
 */
export async function startPortForward(
  kubectl: string,
  sim: Sim,
  target: string,
  remotePorts: number[],
  name = `kubectl ${target}`,
  namespace = NS,
  env?: NodeJS.ProcessEnv,
): Promise<PortForward & { readyMs: number }> {
  const t0 = performance.now();
  const args = ['--kubeconfig', sim.kubeconfig, '-n', namespace, 'port-forward', '--address', '127.0.0.1', target, ...remotePorts.map((p) => `:${p}`)];
  const child = start(name, kubectl, args, env ? { env: { ...process.env, ...env } } : {});
  const ports = new Map<number, Address>();
  for (const remote of remotePorts) {
    const m = await child.waitFor(new RegExp(`Forwarding from 127\\.0\\.0\\.1:(\\d+) -> ${remote}\\b`), 30_000);
    ports.set(remote, { host: '127.0.0.1', port: Number(m[1]) });
  }
  return { child, ports, sample: () => sample(child.pid), readyMs: performance.now() - t0 };
}
