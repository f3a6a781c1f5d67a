/**
 * `npm run bench [-- --quick] [-- --runs N] [-- --only PHASES] [-- --no-profile] [-- --out FILE]`
 *
 * Starts the simulated cluster, kubesocks and kubectl as separate processes,
 * runs every measurement, prints the report (Markdown) on stdout and writes
 * bench/results.json. Progress goes to stderr. Every child process is
 * stopped at the end, also on failure or Ctrl-C. See bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createDialer } from '../src/dialer/dialer.js';
import type { Dialer } from '../src/dialer/dialer.js';
import { bareClient } from './ceiling.js';
import type { BareClient } from './ceiling.js';
import { measureConcurrency } from './concurrency.js';
import { measureCold, measureWarm } from './latency.js';
import type { LatencyFigures } from './latency.js';
import { download, open, upload } from './lib/client.js';
import type { Route } from './lib/client.js';
import { findKubectl, kubectlVersion, log, ROOT, startKubesocks, startPortForward, startSim } from './lib/harness.js';
import type { Kubesocks, PortForward, Sim } from './lib/harness.js';
import { killAll } from './lib/procs.js';
import { summarizeProfileDir } from './lib/profile.js';
import { FAR_NS, NS, PORTS, serviceHost } from './lib/scenario.js';
import { GiB, MiB } from './lib/table.js';
import { renderReport } from './report.js';
import type { Machine, Profile, Results } from './report.js';
import { measureServices } from './services.js';
import { ceilingRoute, dialerRoute, measureThroughput, ROUTE_LABELS } from './throughput.js';
import type { RouteSpec, ThroughputRow } from './throughput.js';
import { measureTransports } from './transports.js';
import { measureUpgrades } from './upgrades.js';
import { measureOnePod } from './onepod.js';
import { measureRtt } from './rtt.js';
import { measureStartup } from './startup.js';

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    profile: { type: 'boolean' },
    'no-profile': { type: 'boolean', default: false },
    out: { type: 'string' },
    only: { type: 'string' },
    rtt: { type: 'string' },
    mib: { type: 'string' },
    onepod: { type: 'string' },
    runtime: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (flags.help) {
  process.stdout.write(
    'Usage: npm run bench [-- --quick] [-- --runs N] [-- --rtt MS] [-- --mib N] [-- --onepod 1000,5000] [-- --only throughput,latency,upgrades,startup,onepod,concurrency,services,rtt,transports,profile] [-- --no-profile] [-- --out FILE] [-- --runtime containerd]\nSee bench/README.md.\n',
  );
  process.exit(0);
}

if (flags.runtime !== undefined && flags.runtime !== 'containerd') {
  process.stderr.write(`--runtime: the only real runtime is "containerd", got "${flags.runtime}"\n`);
  process.exit(2);
}
/**
 * `--runtime containerd`: every pod is a real sandbox in a private containerd
 * (root, Linux; docs/real-runtime.md), so the throughput and connect rows
 * measure kubesocks and kubectl against the real runtime's port-forward.
 * Phases that need hundreds of pods are left out by default.
 */
const runtime = flags.runtime === 'containerd' ? ('containerd' as const) : undefined;
const quick = flags.quick ?? false;
const config = {
  runtime: runtime ?? 'simulated',
  mode: quick ? 'quick' : 'full',
  transferBytes: flags.mib ? Math.max(1, Number(flags.mib) || 1) * MiB : quick ? 64 * MiB : GiB,
  warmupBytes: flags.mib ? Math.max(1, Math.round((Number(flags.mib) || 1) / 4)) * MiB : quick ? 4 * MiB : 256 * MiB,
  runs: Math.max(1, Math.min(9, Number(flags.runs ?? (quick ? 1 : 5)) || 1)),
  latencySamples: quick ? 100 : 1000,
  // Each cold sample is a pod of its own: real sandboxes are fewer.
  coldSamples: quick || runtime ? 10 : 100,
  upgradeSockets: quick ? 100 : 1000,
  upgradePods: 10,
  upgradeConcurrency: 20,
  concSockets: quick ? 100 : 1000,
  concPods: 20,
  concBytes: MiB,
  services: quick ? 10 : 50,
  startupRuns: quick ? 1 : 5,
  onePodSockets: flags.onepod ? flags.onepod.split(',').map((n) => Math.max(1, Number(n) || 1)) : quick ? [100] : [1000, 5000],
  rttMs: flags.rtt === undefined ? 0 : Number(flags.rtt),
  rttBytes: quick ? 16 * MiB : 256 * MiB,
  rttLatencySamples: quick ? 20 : 200,
  transportBytes: quick ? 64 * MiB : 512 * MiB,
  transportRuns: quick ? 1 : 3,
  profile: flags['no-profile'] ? false : (flags.profile ?? !quick),
} as const;
const outFile = flags.out ?? join(ROOT, 'bench', 'results.json');
const PHASES = ['throughput', 'latency', 'upgrades', 'startup', 'onepod', 'concurrency', 'services', 'rtt', 'transports', 'profile'] as const;
if (!(config.rttMs >= 0 && config.rttMs <= 10_000)) {
  process.stderr.write(`--rtt: "${flags.rtt}" is not a round-trip time in ms (0–10000)\n`);
  process.exit(2);
}
const only = flags.only ? new Set(flags.only.split(',').map((s) => s.trim())) : runtime ? new Set(['throughput', 'latency']) : undefined;
for (const name of only ?? []) {
  if (!(PHASES as readonly string[]).includes(name)) {
    process.stderr.write(`--only: unknown phase "${name}" (phases: ${PHASES.join(', ')})\n`);
    process.exit(2);
  }
}
// The remote-cluster phase runs only when --rtt gives it a round-trip time.
const want = (phase: (typeof PHASES)[number]): boolean => (phase === 'rtt' ? config.rttMs > 0 : true) && (!only || only.has(phase));

async function machine(kubectl: string | undefined): Promise<Machine> {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  let commit: string | undefined;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim();
    if (dirty) commit += ' + uncommitted src changes';
  } catch {
    // not a git checkout
  }
  return {
    node: process.version,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cpus: cpus().length,
    memoryGiB: Math.round(totalmem() / GiB),
    kernel: release(),
    kubectl: kubectlVersion(kubectl),
    kubesocks: pkg.version,
    commit,
    date: new Date().toISOString(),
  };
}

/** A kubesocks process against the simulator, stopped by the caller. */
async function withKubesocks<T>(sim: Sim, name: string, body: (ks: Kubesocks) => Promise<T>, profileDir?: string): Promise<T> {
  const ks = await startKubesocks(sim, name, profileDir);
  try {
    return await body(ks);
  } finally {
    await ks.child.stop(10_000);
  }
}

/** What the first group of phases shares: one kubesocks process, one kubectl, one bare client, one dialer. */
interface Setup {
  sim: Sim;
  ks: Kubesocks;
  pf: PortForward | undefined;
  bare: BareClient;
  dialer: Dialer;
}

const BULK_HOST = serviceHost('bulk');

/** Notes the throughput phase adds to the report. */
const ceilingNotes: string[] = [];

function socks(ks: Kubesocks, host: string, port: number): Route {
  return { kind: 'socks5', proxy: ks.proxy, host, port };
}

function httpConnect(ks: Kubesocks, host: string, port: number): Route {
  return { kind: 'http', proxy: ks.proxy, host, port };
}

async function throughputPhase({ sim, ks, pf, bare, dialer }: Setup): Promise<ThroughputRow[]> {
  log(`bulk throughput, ${config.transferBytes / MiB} MiB each way, ${config.runs} run(s)`);
  const { source, sink } = sim.ready.backends;
  const specs: RouteSpec[] = [
    { route: 'direct', openSource: () => open({ kind: 'tcp', address: source }), openSink: () => open({ kind: 'tcp', address: sink }) },
    ceilingRoute(bare, PORTS.source, PORTS.sink),
  ];
  if (pf) {
    specs.push({
      route: 'kubectl',
      openSource: () => open({ kind: 'tcp', address: pf.ports.get(PORTS.source)! }),
      openSink: () => open({ kind: 'tcp', address: pf.ports.get(PORTS.sink)! }),
      forwarder: pf.sample,
    });
  }
  specs.push(
    { route: 'socks5', openSource: () => open(socks(ks, BULK_HOST, PORTS.source)), openSink: () => open(socks(ks, BULK_HOST, PORTS.sink)), forwarder: ks.sample },
    { route: 'http', openSource: () => open(httpConnect(ks, BULK_HOST, PORTS.source)), openSink: () => open(httpConnect(ks, BULK_HOST, PORTS.sink)), forwarder: ks.sample },
    dialerRoute(dialer, BULK_HOST, PORTS.source, PORTS.sink),
  );
  const rows = await measureThroughput(sim, specs, { bytes: config.transferBytes, runs: config.runs, warmupBytes: config.warmupBytes });
  if (!pf) rows.splice(2, 0, { route: 'kubectl', label: ROUTE_LABELS.kubectl, skipped: 'kubectl not found' });
  const ceiling = rows.find((r) => r.route === 'ceiling');
  const above = rows.filter((r) => ['socks5', 'http', 'dialer'].includes(r.route) && (['download', 'upload'] as const).some((d) => (r[d]?.mibPerSec ?? 0) > (ceiling?.[d]?.mibPerSec ?? Infinity)));
  if (above.length > 0) {
    ceilingNotes.push(
      `The ceiling row ran below ${above.map((r) => r.label).join(', ')} in at least one direction: the bare client does TLS, SPDY and the SHA-256 check in the runner process, so on a machine this small it is not a strict upper bound.`,
    );
  }
  return rows;
}

async function latencyPhase({ sim, ks, pf, dialer }: Setup): Promise<LatencyFigures[]> {
  const n = config.latencySamples;
  log(`connect latency, ${n} sequential connections per route`);
  const rows: LatencyFigures[] = [];
  rows.push(await measureWarm('direct TCP to the backend', { kind: 'tcp', address: sim.ready.backends.echo }, n));
  if (pf) rows.push(await measureWarm('kubectl port-forward (running)', { kind: 'tcp', address: pf.ports.get(PORTS.echo)! }, n));
  const before = await sim.counters();
  const warm = await measureWarm('kubesocks SOCKS5, warm', socks(ks, BULK_HOST, PORTS.echo), n, 'pooled connection to the pod exists');
  const extra = (await sim.counters()).upgrades - before.upgrades;
  if (extra > 0) warm.note += `; ${extra} more upgrade(s) while sampling (pairs linger ≤ 1 s after FIN)`;
  rows.push(warm);
  rows.push(await measureWarm('kubesocks HTTP CONNECT, warm', httpConnect(ks, BULK_HOST, PORTS.echo), n));
  rows.push(await measureWarm('kubesocks dialer API, warm', { kind: 'dialer', dialer, host: BULK_HOST, port: PORTS.echo }, n, 'in-process'));
  const cold = Array.from({ length: config.coldSamples }, (_, i) => socks(ks, serviceHost(`cold-${i}`), PORTS.echo));
  rows.push(await measureCold('kubesocks SOCKS5, cold', cold, `first socket to each of ${config.coldSamples} pods: TLS + upgrade + pod-accept check`));
  return rows;
}

/** A fresh kubesocks process under --cpu-prof carries one SOCKS5 transfer; the samples taken during it are summarized. */
async function profileTransfer(sim: Sim, dir: string, direction: 'download' | 'upload'): Promise<Profile> {
  const profileDir = join(dir, `profile-${direction}`);
  log(`profiling kubesocks during a ${config.transferBytes / MiB} MiB SOCKS5 ${direction}`);
  let rate = 0;
  const window = { startUs: 0, endUs: 0 };
  await withKubesocks(
    sim,
    `kubesocks (profiled ${direction})`,
    async (ks) => {
      const route: Route = { kind: 'socks5', proxy: ks.proxy, host: BULK_HOST, port: direction === 'download' ? PORTS.source : PORTS.sink };
      const run = async (bytes: number, timeoutMs: number) => {
        const stream = await open(route);
        return direction === 'download' ? download(stream, bytes, timeoutMs) : upload(stream, bytes, timeoutMs);
      };
      await run(config.warmupBytes, 60_000);
      window.startUs = Number(process.hrtime.bigint() / 1000n);
      const result = await run(config.transferBytes, 120_000);
      window.endUs = Number(process.hrtime.bigint() / 1000n);
      rate = result.bytes / MiB / result.seconds;
      log(`  profiled ${direction}: ${rate.toFixed(1)} MiB/s (with the profiler on)`);
    },
    profileDir,
  );
  const summary = await summarizeProfileDir(profileDir, ROOT, window);
  if (!summary) throw new Error('the profiled kubesocks process wrote no .cpuprofile');
  const kept = `bench/kubesocks-${direction}.cpuprofile`;
  await writeFile(join(ROOT, kept), await readFile(summary.file));
  const scope = summary.scope === 'window' ? 'samples taken during the transfer only' : 'whole process lifetime (start-up included)';
  return { ...summary, file: kept, transfer: `${config.transferBytes / MiB} MiB SOCKS5 ${direction} at ${rate.toFixed(0)} MiB/s with the profiler on; ${scope}` };
}

async function main(): Promise<Results> {
  const t0 = performance.now();
  const notes: string[] = [];
  const dir = await mkdtemp(join(tmpdir(), 'kubesocks-bench-'));
  let dialer: Dialer | undefined;
  let bare: BareClient | undefined;
  try {
    const kubectl = findKubectl();
    const facts = await machine(kubectl);
    log(`${config.mode} run; node ${facts.node}; ${facts.cpuModel} × ${facts.cpus}; kubectl ${facts.kubectl ?? 'not found'}`);
    if (!kubectl) notes.push('kubectl not found: its rows are skipped (set KUBECTL=/path/to/kubectl).');
    if (facts.cpus < 4) {
      notes.push(
        `Only ${facts.cpus} CPUs: the client (this process), the simulator and the forwarder (kubectl or kubesocks) share them, so every proxied row is partly CPU-bound on the machine, not only on the forwarder.`,
      );
    }

    // Pods only for the phases that run (each is a real sandbox with --runtime).
    const sim = await startSim(
      dir,
      {
        coldPods: want('latency') ? config.coldSamples : 0,
        spreadPods: want('upgrades') ? config.upgradePods : 0,
        concPods: want('concurrency') ? config.concPods : 0,
        services: want('services') ? config.services : 0,
      },
      runtime,
    );
    if (runtime) {
      notes.push(
        'Real runtime: every pod is a containerd 1.6 sandbox (runc, its own network namespace on a CNI bridge); the simulated API server relays port-forward to containerd\'s streaming server as a kubelet does. "direct" is TCP to the bulk pod\'s own address on the bridge; the pods\' servers are busybox (nc -e cat, a shell source, sha256sum), so absolute figures include their cost — compare rows within this run.',
      );
    }
    log(`simulator ${sim.ready.url} (pid ${sim.child.pid})`);

    const results: Results = {
      mode: config.mode,
      machine: facts,
      config: { ...config },
      throughput: [],
      latency: [],
      profiles: [],
      failures: [],
      notes,
      elapsedSeconds: 0,
    };
    /** Runs one measurement; a failure is recorded (and fails the run) without stopping the others. */
    const phase = async (name: string, body: () => Promise<void>): Promise<void> => {
      try {
        await body();
      } catch (error) {
        const message = (error as Error)?.message ?? String(error);
        log(`${name} FAILED: ${message}`);
        results.failures.push({ phase: name, error: message });
      }
    };

    if (want('throughput') || want('latency') || want('upgrades')) {
      await phase('setup', () =>
        withKubesocks(sim, 'kubesocks', async (ks) => {
          log(`kubesocks ${ks.proxy.host}:${ks.proxy.port} (pid ${ks.child.pid})`);
          const pf = kubectl ? await startPortForward(kubectl, sim, 'pod/bulk-0', [PORTS.source, PORTS.sink, PORTS.echo]) : undefined;
          if (pf) log(`kubectl port-forward pod/bulk-0 (pid ${pf.child.pid})`);
          bare = await bareClient(sim, 'bulk-0');
          dialer = await createDialer({ kubeconfig: sim.kubeconfig, namespace: NS });
          const setup: Setup = { sim, ks, pf, bare, dialer };
          if (want('throughput')) await phase('throughput', async () => void (results.throughput = await throughputPhase(setup)));
          if (want('latency')) await phase('latency', async () => void (results.latency = await latencyPhase(setup)));
          if (want('upgrades')) {
            await phase('upgrades', async () => {
              log(`upgrades, ${config.upgradeSockets} sockets over ${config.upgradePods} pods`);
              results.upgrades = await measureUpgrades(sim, ks.proxy, serviceHost('spread'), PORTS.echo, config.upgradeSockets, config.upgradePods, config.upgradeConcurrency);
            });
          }
          await pf?.child.stop();
        }),
      );
    }

    // ---- start-up and idle footprint, fresh processes
    if (want('startup')) {
      await phase('startup', async () => {
        log(`start-up and idle footprint, ${config.startupRuns} fresh processes each`);
        results.startup = await measureStartup(
          sim,
          kubectl,
          { kubesocksHost: `first.${FAR_NS}.svc.cluster.local`, port: PORTS.echo, kubectlTarget: 'svc/first', kubectlNamespace: FAR_NS },
          config.startupRuns,
        );
      });
    }

    // ---- many sockets to one pod, fresh kubesocks and kubectl processes
    if (want('onepod')) {
      await phase('onepod', async () => {
        log(`one pod, ${config.onePodSockets.join(' and ')} sockets × ${config.concBytes / MiB} MiB echo, kubesocks vs kubectl`);
        try {
          results.onePod = await measureOnePod(sim, kubectl, [...config.onePodSockets], {
            bytesEach: config.concBytes,
            handshakesInFlight: 200,
            timeoutMs: quick ? 60_000 : 600_000,
          });
        } catch (error) {
          const partial = (error as { figures?: Results['onePod'] }).figures;
          if (partial) results.onePod = partial;
          throw error;
        }
      });
    }

    // ---- concurrent sockets, in a fresh kubesocks process
    if (want('concurrency')) {
      await phase('concurrency', async () => {
        log(`concurrency, ${config.concSockets} sockets × ${config.concBytes / MiB} MiB over ${config.concPods} pods`);
        results.concurrency = await withKubesocks(sim, 'kubesocks (concurrency)', (ks) =>
          measureConcurrency(sim, ks, serviceHost('conc'), PORTS.echo, {
            sockets: config.concSockets,
            pods: config.concPods,
            bytesEach: config.concBytes,
            handshakesInFlight: 200,
            timeoutMs: quick ? 30_000 : 300_000,
          }),
        );
      });
    }

    // ---- many services, in a fresh kubesocks process
    if (want('services')) {
      await phase('services', async () => {
        log(`many services, ${config.services}`);
        results.services = await withKubesocks(sim, 'kubesocks (services)', (ks) => measureServices(sim, ks, kubectl, config.services));
      });
    }

    // ---- a remote cluster: everything through a relay that delays each direction by RTT/2
    if (want('rtt')) {
      await phase('rtt', async () => {
        results.rtt = await measureRtt(sim, kubectl, dir, {
          rttMs: config.rttMs,
          startupRuns: quick ? 1 : 3,
          latencySamples: config.rttLatencySamples,
          bytes: config.rttBytes,
          runs: quick ? 1 : 3,
        });
      });
    }

    // ---- each port-forward transport, kubesocks and kubectl, in fresh processes
    if (want('transports')) {
      await phase('transports', async () => {
        log(`transports: kubesocks and kubectl over SPDY and over WebSockets, ${config.transportBytes / MiB} MiB each way, ${config.transportRuns} run(s)`);
        results.transports = await measureTransports(sim, kubectl, {
          bytes: config.transportBytes,
          warmupBytes: config.warmupBytes,
          runs: config.transportRuns,
          connectSamples: config.latencySamples,
        });
      });
    }

    // ---- profiles of a SOCKS5 download and upload
    if (config.profile && want('profile')) {
      for (const direction of ['download', 'upload'] as const) {
        await phase(`profile (${direction})`, async () => {
          results.profiles.push(await profileTransfer(sim, dir, direction));
        });
      }
    }

    notes.push(...ceilingNotes);
    results.elapsedSeconds = (performance.now() - t0) / 1000;
    return results;
  } finally {
    bare?.close();
    await dialer?.close();
    await killAll();
    await rm(dir, { recursive: true, force: true });
  }
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`${signal}: stopping child processes`);
    void killAll().finally(() => process.exit(130));
  });
}

main().then(
  async (results) => {
    await writeFile(outFile, `${JSON.stringify(results, null, 2)}\n`);
    process.stdout.write(renderReport(results));
    log(`wrote ${outFile}`);
    if (quick && results.elapsedSeconds > 60) log(`warning: the quick run took ${results.elapsedSeconds.toFixed(1)} s (target: under 60 s)`);
    if (results.failures.length > 0) {
      log(`${results.failures.length} measurement(s) failed: ${results.failures.map((f) => f.phase).join(', ')}`);
      process.exit(1);
    }
    process.exit(0);
  },
  (error: unknown) => {
    log(`FAILED: ${(error as Error)?.stack ?? String(error)}`);
    process.exit(1);
  },
);
