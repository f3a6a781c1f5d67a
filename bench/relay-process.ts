/**
 * The delaying relay (src/sim/delay-relay.ts) as a process of its own, so its
 * CPU time is not the runner's, kubesocks' or kubectl's.
 *
 *   node --import tsx bench/relay-process.ts TARGET_HOST:PORT DELAY_MS
 *
 * Prints `{"port":N}` once listening on 127.0.0.1. Exits when stdin closes
 * (the benchmark runner went away) or on SIGTERM.
 */
import { startDelayRelay } from '../src/sim/delay-relay.js';

async function main(): Promise<void> {
  const [target, delayText] = process.argv.slice(2);
  const m = /^(.+):(\d+)$/.exec(target ?? '');
  const delayMs = Number(delayText);
  if (!m || !Number.isFinite(delayMs)) throw new Error('usage: relay-process.ts HOST:PORT DELAY_MS');
  const relay = await startDelayRelay({ host: m[1]!, port: Number(m[2]) }, delayMs);
  process.stdout.write(`${JSON.stringify({ port: relay.port })}\n`);
  const stop = (): void => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
}

main().catch((error: unknown) => {
  process.stderr.write(`relay-process: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
