/**
 * For the status-page tests: the simulated demo cluster, a dialer and the
 * proxy sharing one Observer (as `kubesocks demo` wires them), and a GET
 * with a chosen Host header and credentials.
 */
import { request } from 'node:http';
import { execFile } from 'node:child_process';
import { createDialer, type Dialer } from '../../src/dialer/dialer.js';
import type { KubesocksError } from '../../src/errors.js';
import { createProxyServer, type ProxyServer, type ProxyServerOptions } from '../../src/proxy/server.js';
import { findBinary } from './e2e-procs.js';
import { startTestCluster, type TestCluster } from './sim.js';

/** `promtool` (Debian's prometheus package; scripts/ensure-test-tools.sh installs it). */
export const PROMTOOL = findBinary('promtool');
/** Skip option for tests that need promtool. */
export const NEEDS_PROMTOOL = { skip: !PROMTOOL && 'promtool is not installed (Debian package prometheus)' };

export interface StatusRig {
  t: TestCluster;
  dialer: Dialer;
  proxy: ProxyServer;
  port: number;
  proxyErrors: KubesocksError[];
  close(): Promise<void>;
}

/** The built-in demo scenario (namespace `demo`: web, echo, db, …) behind a proxy on 127.0.0.1:0. */
export async function startStatusRig(options: Partial<ProxyServerOptions> = {}): Promise<StatusRig> {
  const t = await startTestCluster();
  const dialer = await createDialer({ kubeconfig: t.kubeconfig });
  const proxyErrors: KubesocksError[] = [];
  const proxy = createProxyServer({ connector: dialer.connector(), observer: dialer.observer, onError: (e) => proxyErrors.push(e), ...options });
  const { port } = await proxy.listen('127.0.0.1', 0);
  return {
    t,
    dialer,
    proxy,
    port,
    proxyErrors,
    async close() {
      await proxy.close();
      await dialer.close();
      await t.close();
    },
  };
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A request to 127.0.0.1:port with exactly these headers (Host included). */
export function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers: { Host: `127.0.0.1:${port}`, ...headers }, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)));
    req.on('error', reject);
    req.end();
  });
}

export const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

/** Runs `promtool check metrics` on the text; its exit code and output (lint problems are printed). */
export function promtoolCheck(text: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = execFile(PROMTOOL ?? 'promtool', ['check', 'metrics'], (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` });
    });
    child.stdin?.end(text);
  });
}

/** One sample's value from a Prometheus text exposition (0 when absent). */
export function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}
