/**
 * Upgrades per N sockets spread over the pods of one service: what the
 * simulator's API server counted (101 answers to pods/portforward) while
 * kubesocks carried N short connections, next to the N upgrades a tool that
 * opens one port-forward per connection would need.
 */
import { echoByte, open } from './lib/client.js';
import type { Address } from './lib/client.js';
import { log } from './lib/harness.js';
import type { Sim } from './lib/harness.js';

export interface UpgradeFigures {
  sockets: number;
  pods: number;
  /** Sockets open at the same time at most. */
  concurrency: number;
  kubesocksUpgrades: number;
  /** One upgrade per socket. */
  naiveUpgrades: number;
  /** Stream pairs that reached a backend (should equal sockets). */
  pairs: number;
  seconds: number;
}

export async function measureUpgrades(sim: Sim, proxy: Address, host: string, port: number, sockets: number, pods: number, concurrency: number): Promise<UpgradeFigures> {
  await sim.resetCounters();
  const t0 = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < sockets) {
      next++;
      const stream = await open({ kind: 'socks5', proxy, host, port }, 15_000);
      await echoByte(stream, 15_000);
      stream.on('error', () => {});
      stream.end();
      stream.resume();
      setTimeout(() => stream.destroy(), 5000).unref();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const counters = await sim.counters();
  const figures: UpgradeFigures = {
    sockets,
    pods,
    concurrency,
    kubesocksUpgrades: counters.upgrades,
    naiveUpgrades: sockets,
    pairs: counters.pairs,
    seconds,
  };
  log(`  ${sockets} sockets over ${pods} pods: ${counters.upgrades} upgrades, ${counters.pairs} pairs`);
  if (counters.pairs !== sockets) throw new Error(`upgrades: the simulator counted ${counters.pairs} pairs for ${sockets} sockets`);
  return figures;
}
