/**
 * The simulated cluster's control endpoint: plain HTTP/JSON on 127.0.0.1, so
 * out-of-process tests and benchmarks can change the cluster and read its
 * counters. Loopback only, and requests naming another Host (DNS rebinding)
 * or coming from a browser page (Origin) are refused.
 *
 *   GET    /counters                    → SimCounters
 *   POST   /counters/reset
 *   GET    /feature-gates               → {"PortForwardWebsockets": bool}
 *   POST   /feature-gates               body {"PortForwardWebsockets": false} (switch at run time)
 *   POST   /pods                        body ScenarioPod (add or replace)
 *   DELETE /pods/NS/NAME
 *   POST   /pods/NS/NAME/ready          body {"ready": bool}
 *   POST   /pods/NS/NAME/phase          body {"phase": "Running" | …}
 *   POST   /pods/NS/NAME/terminating    body {"terminating": bool}
 *   POST   /services                    body ScenarioService (add or replace)
 *   DELETE /services/NS/NAME
 *   POST   /deployments                 body ScenarioWorkload (add or replace);
 *                                        likewise /statefulsets, /replicasets
 *   DELETE /deployments/NS/NAME         (and /statefulsets/…, /replicasets/…)
 *   POST   /users                       body ScenarioUser
 *   POST   /revoke                      body {"token": "…"}
 *   POST   /restart-apiserver
 *   POST   /cut-watches
 *   POST   /compact-history
 *
 * Success is 200 with a JSON body (GET) or 204; failures are Status objects.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { ScenarioError } from './scenario.js';
import { StatusError, asStatusError, badRequest, methodNotAllowed, pathNotFound } from './status.js';
import type { ScenarioPod, ScenarioService, ScenarioUser, ScenarioWorkload, SimCounters, SimFeatureGates, WorkloadResource } from './types.js';
import { isLoopbackHost } from '../net/loopback.js';

const WORKLOADS: readonly string[] = ['deployments', 'statefulsets', 'replicasets'] satisfies WorkloadResource[];
const isWorkload = (v: string | undefined): v is WorkloadResource => v !== undefined && WORKLOADS.includes(v);

/** What the control endpoint drives (SimCluster). */
export interface ControlTarget {
  counters(): SimCounters;
  resetCounters(): void;
  featureGates(): SimFeatureGates;
  setFeatureGates(gates: Partial<SimFeatureGates>): void;
  replacePod(pod: ScenarioPod): void;
  deletePod(namespace: string, name: string): void;
  setPodReady(namespace: string, name: string, ready: boolean): void;
  setPodPhase(namespace: string, name: string, phase: NonNullable<ScenarioPod['phase']>): void;
  setPodTerminating(namespace: string, name: string, terminating: boolean): void;
  addService(service: ScenarioService): void;
  deleteService(namespace: string, name: string): void;
  addWorkload(resource: WorkloadResource, workload: ScenarioWorkload): void;
  deleteWorkload(resource: WorkloadResource, namespace: string, name: string): void;
  addUser(user: ScenarioUser): void;
  revokeToken(token: string): void;
  restartApiServer(): Promise<void>;
  cutWatches(): void;
  compactHistory(): void;
}

export interface ControlServer {
  url: string;
  close(): Promise<void>;
}

const MAX_BODY = 1024 * 1024;

function send(res: ServerResponse, code: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(code);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw badRequest(`request body larger than ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw badRequest(`invalid JSON body: ${(err as Error).message}`);
  }
}

function field<T>(body: unknown, name: string, check: (v: unknown) => v is T, expected: string): T {
  const value = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
  if (!check(value)) throw badRequest(`body.${name}: expected ${expected}`);
  return value;
}

const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
const isString = (v: unknown): v is string => typeof v === 'string';
const PHASES = ['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'] as const;
const isPhase = (v: unknown): v is (typeof PHASES)[number] => typeof v === 'string' && (PHASES as readonly string[]).includes(v);

async function route(target: ControlTarget, req: IncomingMessage): Promise<{ code: number; body?: unknown }> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const parts = url.pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
  const method = req.method ?? 'GET';
  const done = { code: 204 };
  const [head, ns, name, action] = parts;

  if (head === 'counters' && parts.length === 1) {
    if (method !== 'GET') throw methodNotAllowed();
    return { code: 200, body: target.counters() };
  }
  if (head === 'feature-gates' && parts.length === 1) {
    if (method === 'GET') return { code: 200, body: target.featureGates() };
    if (method !== 'POST') throw methodNotAllowed();
    target.setFeatureGates((await readJson(req)) as Partial<SimFeatureGates>);
    return done;
  }
  if (method === 'POST' && parts.length === 1) {
    if (isWorkload(head)) {
      target.addWorkload(head, (await readJson(req)) as ScenarioWorkload);
      return done;
    }
    switch (head) {
      case 'pods':
        target.replacePod((await readJson(req)) as ScenarioPod);
        return done;
      case 'services':
        target.addService((await readJson(req)) as ScenarioService);
        return done;
      case 'users':
        target.addUser((await readJson(req)) as ScenarioUser);
        return done;
      case 'revoke':
        target.revokeToken(field(await readJson(req), 'token', isString, 'a string'));
        return done;
      case 'restart-apiserver':
        await target.restartApiServer();
        return done;
      case 'cut-watches':
        target.cutWatches();
        return done;
      case 'compact-history':
        target.compactHistory();
        return done;
    }
  }
  if (method === 'POST' && head === 'counters' && ns === 'reset' && parts.length === 2) {
    target.resetCounters();
    return done;
  }
  if ((head === 'pods' || head === 'services' || isWorkload(head)) && ns !== undefined && name !== undefined) {
    if (parts.length === 3) {
      if (method !== 'DELETE') throw methodNotAllowed();
      if (head === 'pods') target.deletePod(ns, name);
      else if (head === 'services') target.deleteService(ns, name);
      else target.deleteWorkload(head, ns, name);
      return done;
    }
    if (head === 'pods' && parts.length === 4 && method === 'POST') {
      const body = await readJson(req);
      switch (action) {
        case 'ready':
          target.setPodReady(ns, name, field(body, 'ready', isBool, 'true or false'));
          return done;
        case 'phase':
          target.setPodPhase(ns, name, field(body, 'phase', isPhase, `one of ${PHASES.join(', ')}`));
          return done;
        case 'terminating':
          target.setPodTerminating(ns, name, field(body, 'terminating', isBool, 'true or false'));
          return done;
      }
    }
  }
  throw pathNotFound();
}

export async function startControlServer(target: ControlTarget, host = '127.0.0.1'): Promise<ControlServer> {
  const sockets = new Set<Socket>();
  let port = 0;
  const server: Server = createServer((req, res) => {
    const allowedHosts = [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`];
    if (!isLoopbackHost(req.socket.remoteAddress ?? '') || !allowedHosts.includes(req.headers.host ?? '') || req.headers.origin !== undefined) {
      send(res, 403, new StatusError(403, 'Forbidden', 'the control endpoint only serves local tools').status);
      return;
    }
    route(target, req).then(
      ({ code, body }) => send(res, code, body),
      (err: unknown) => {
        const status = err instanceof ScenarioError ? badRequest(err.message) : asStatusError(err);
        send(res, status.code, status.status);
      },
    );
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      })),
  };
}
