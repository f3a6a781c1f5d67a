/**
 * `kubesocks demo` as a child process, the way a person runs it: the CLI
 * through tsx, `--listen 127.0.0.1:0`, and the ready line and hints read
 * from its stderr.
 */
import { request } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { Proc, REPO_ROOT, cleanEnv, type Exit } from './e2e-procs.js';
import { TEST_TRANSPORT_ARGS } from './transport.js';

export interface DemoProcess {
  proc: Proc;
  /** `127.0.0.1:PORT` of the proxy. */
  proxy: string;
  port: number;
  /** `https://127.0.0.1:PORT` of the simulated API server. */
  clusterUrl: string;
  /** The lines the demo printed before it went quiet, without the `kubesocks:` prefix. */
  lines: string[];
  /** SIGTERM (or `signal`), then the exit and how long it took; kills the group after `timeoutMs`. */
  stop(options?: { signal?: NodeJS.Signals; timeoutMs?: number }): Promise<Exit & { ms: number; timedOut: boolean }>;
}

/** Starts `kubesocks demo --listen 127.0.0.1:0 ARGS…` (with `env` added to a clean environment) and waits until it has printed its hints. */
export async function startDemo(args: readonly string[] = [], env: Record<string, string> = {}): Promise<DemoProcess> {
  const proc = new Proc(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'demo', '--listen', '127.0.0.1:0', ...TEST_TRANSPORT_ARGS, ...args], {
    cwd: REPO_ROOT,
    env: cleanEnv(env),
  });
  try {
    const cluster = await proc.waitFor(/simulated cluster (https:\/\/127\.0\.0\.1:\d+)/, { stream: 'stderr', timeoutMs: 20_000 });
    const listening = await proc.waitFor(/listening on (127\.0\.0\.1):(\d+)/, { stream: 'stderr', timeoutMs: 20_000 });
    await quiet(proc, 300);
    const port = Number(listening[2]);
    return {
      proc,
      proxy: `127.0.0.1:${port}`,
      port,
      clusterUrl: cluster[1] ?? '',
      lines: proc.stderr
        .split('\n')
        .filter((l) => l.startsWith('kubesocks:'))
        .map((l) => l.replace(/^kubesocks:\s?/, '')),
      async stop({ signal = 'SIGTERM', timeoutMs = 8000 } = {}) {
        const started = performance.now();
        proc.signal(signal);
        const exit = await proc.settle(timeoutMs);
        return { ...exit, ms: performance.now() - started };
      },
    };
  } catch (err) {
    proc.kill();
    throw err;
  }
}

/** Resolves once the process printed nothing for `ms`. */
async function quiet(proc: Proc, ms: number): Promise<void> {
  let last = -1;
  for (;;) {
    const seen = proc.stdout.length + proc.stderr.length;
    if (seen === last) return;
    last = seen;
    await new Promise((r) => setTimeout(r, ms));
  }
}

/** GET `path` from the API server named by a kubeconfig, with its CA and token; the parsed JSON. */
export async function apiGet(kubeconfig: string, path: string): Promise<unknown> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  if (!cluster || !user?.token || !cluster.caData) throw new Error(`${kubeconfig}: expected a cluster with certificate-authority-data and a token`);
  const url = new URL(path, cluster.server);
  const ca = Buffer.from(cluster.caData, 'base64');
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers: { Authorization: `Bearer ${user.token}`, Accept: 'application/json' }, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`GET ${url}: ${res.statusCode} ${body}`));
        else resolve(JSON.parse(body));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}
