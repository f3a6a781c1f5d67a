/** A simulated cluster reached through a delaying relay: a remote API server, for tests that count connections and round trips. */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startDelayRelay, type DelayRelay } from '../../src/sim/delay-relay.js';
import type { Scenario } from '../../src/sim/types.js';
import { startTestCluster, type TestCluster } from './sim.js';

export interface RemoteCluster {
  sim: TestCluster;
  relay: DelayRelay;
  /** A kubeconfig whose server is the relay. */
  kubeconfig: string;
  close(): Promise<void>;
}

export async function startRemoteCluster(scenario: Scenario | undefined, delayMs: number): Promise<RemoteCluster> {
  const sim = await startTestCluster(scenario);
  const api = new URL(sim.cluster.url);
  const relay = await startDelayRelay({ host: api.hostname, port: Number(api.port) }, delayMs);
  const kubeconfig = join(sim.dir, 'kubeconfig-remote');
  const text = await readFile(sim.kubeconfig, 'utf8');
  const server = `https://${api.hostname}:${api.port}`;
  if (!text.includes(server)) throw new Error(`the test kubeconfig does not name ${server}`);
  await writeFile(kubeconfig, text.split(server).join(`https://${api.hostname}:${relay.port}`), { mode: 0o600 });
  return {
    sim,
    relay,
    kubeconfig,
    async close() {
      await relay.close();
      await sim.close();
    },
  };
}
