/**
 * New-connection latency: connect (plus the SOCKS5 / CONNECT handshake where
 * there is one) and a one-byte echo round trip, one connection after
 * another. Each connection is then closed with a FIN, as a client would; the
 * simulated runtime, like a real one, keeps the pod side open for up to 1 s
 * after that, so pairs linger while later samples run.
 */
import type { Duplex } from 'node:stream';
import { echoByte, open } from './lib/client.js';
import type { Route } from './lib/client.js';
import { log } from './lib/harness.js';
import { percentile } from './lib/table.js';

export interface LatencyFigures {
  label: string;
  samples: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
  note?: string;
  /** Every sample, in order (ms, 2 decimals). */
  samplesMs: number[];
}

/** Closes a connection politely and makes sure it is gone within a few seconds. */
function release(stream: Duplex): void {
  stream.on('error', () => {});
  stream.end();
  stream.resume();
  setTimeout(() => stream.destroy(), 5000).unref();
}

/** One sample: open by `route`, one byte there and back. */
async function once(route: Route): Promise<number> {
  const t0 = performance.now();
  const stream = await open(route, 15_000);
  await echoByte(stream, 15_000);
  const ms = performance.now() - t0;
  release(stream);
  return ms;
}

function summarize(label: string, times: number[], note?: string): LatencyFigures {
  const figures: LatencyFigures = {
    label,
    samples: times.length,
    p50Ms: percentile(times, 50),
    p90Ms: percentile(times, 90),
    p99Ms: percentile(times, 99),
    meanMs: times.reduce((a, b) => a + b, 0) / times.length,
    maxMs: Math.max(...times),
    samplesMs: times.map((t) => Math.round(t * 100) / 100),
  };
  if (note) figures.note = note;
  log(`  ${label}: p50 ${figures.p50Ms.toFixed(2)} ms, p99 ${figures.p99Ms.toFixed(2)} ms over ${times.length}`);
  return figures;
}

/** `samples` sequential connections by the same route (after 20 untimed ones). */
export async function measureWarm(label: string, route: Route, samples: number, note?: string): Promise<LatencyFigures> {
  for (let i = 0; i < 20; i++) await once(route);
  const times: number[] = [];
  for (let i = 0; i < samples; i++) times.push(await once(route));
  return summarize(label, times, note);
}

/** One connection per route, each the first to its pod (`routes` must all be distinct, never used before). */
export async function measureCold(label: string, routes: Route[], note?: string): Promise<LatencyFigures> {
  const times: number[] = [];
  for (const route of routes) times.push(await once(route));
  return summarize(label, times, note);
}
