/**
 * Headless Chromium for the end-to-end tests: where it is, whether a suite
 * may skip without it, and one `--dump-dom` run through a proxy flag. (The
 * DevTools-protocol driver for pages that need scripting is ./cdp.ts.)
 */
import * as assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Proc, cleanEnv, findBinary } from './e2e-procs.js';

export const CHROMIUM = findBinary('/usr/bin/chromium', 'chromium', 'chromium-browser', 'google-chrome');

/**
 * The `skip` option for a test that drives Chromium. With CI=true it never
 * skips: scripts/ensure-test-tools.sh installs Chromium there, and a missing
 * one must fail the test rather than hide it.
 */
export const chromiumSkip: string | false = !CHROMIUM && process.env.CI !== 'true' ? 'chromium is not installed' : false;

/** What a `--dump-dom` run printed. */
export interface DumpedDom {
  /** The DOM of the loaded page. */
  stdout: string;
  /** stdout and stderr, for assertion messages. */
  output: string;
}

/** Chromium `--dump-dom` of `url` through `proxyFlag`, with a fresh profile removed afterwards. */
export async function dumpDom(proxyFlag: string, url: string): Promise<DumpedDom> {
  const profile = await mkdtemp(join(tmpdir(), 'kubesocks-e2e-chromium-'));
  const proc = new Proc(
    CHROMIUM ?? 'chromium',
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
      // Fewer of Chromium's own requests to Google (they would go DIRECT or fail).
      '--disable-default-apps',
      '--disable-domain-reliability',
      '--no-pings',
      '--metrics-recording-only',
      '--disable-client-side-phishing-detection',
      `--user-data-dir=${profile}`,
      proxyFlag,
      '--timeout=15000',
      '--dump-dom',
      url,
    ],
    { env: cleanEnv({ HOME: profile }) },
  );
  try {
    const exit = await proc.settle(25_000);
    assert.equal(exit.timedOut, false, `chromium did not finish within 25 s\n${proc.output}`);
    return { stdout: proc.stdout, output: proc.output };
  } finally {
    proc.kill();
    await proc.closed;
    await rm(profile, { recursive: true, force: true });
  }
}
