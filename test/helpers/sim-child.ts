/**
 * A simulated cluster in a child process of its own, so a test can freeze
 * the whole API server with SIGSTOP (a black hole: the kernel still accepts
 * connections and takes bytes, nothing answers — as when a VPN drops) and
 * thaw it with SIGCONT. Run as a script, it starts the scenario given as
 * JSON in argv[2], writes an admin kubeconfig to argv[3] and prints
 * `READY https://127.0.0.1:PORT`.
 */
import { fileURLToPath } from 'node:url';
import { SimCluster } from '../../src/sim/cluster.js';
import type { Scenario } from '../../src/sim/types.js';
import { cleanEnv, Proc, REPO_ROOT } from './e2e-procs.js';

export interface SimChild {
  proc: Proc;
  /** `https://127.0.0.1:PORT` of its API server. */
  url: string;
  kubeconfig: string;
  /** SIGSTOP: the API server stops answering (connections are still accepted by the kernel). */
  freeze(): void;
  /** SIGCONT: it answers again, including what arrived meanwhile. */
  thaw(): void;
  close(): Promise<void>;
}

export async function startSimChild(scenario: Scenario, kubeconfig: string): Promise<SimChild> {
  const proc = new Proc(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), JSON.stringify(scenario), kubeconfig], {
    cwd: REPO_ROOT,
    env: cleanEnv(),
  });
  try {
    const ready = await proc.waitFor(/^READY (https:\/\/\S+)$/m, { stream: 'stdout', timeoutMs: 20_000 });
    return {
      proc,
      url: ready[1] ?? '',
      kubeconfig,
      freeze: () => proc.signal('SIGSTOP'),
      thaw: () => proc.signal('SIGCONT'),
      async close() {
        proc.signal('SIGCONT');
        proc.kill();
        await proc.closed;
      },
    };
  } catch (err) {
    proc.kill();
    throw err;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [scenarioJson = '{}', file = ''] = process.argv.slice(2);
  const cluster = await SimCluster.start({ scenario: JSON.parse(scenarioJson) as Scenario });
  await cluster.writeKubeconfig(file);
  process.stdout.write(`READY ${cluster.url}\n`);
  // Stays up until killed.
  setInterval(() => {}, 1 << 30);
}
