/**
 * The one scenario every benchmark phase shares (namespace `bench`). Backends
 * are written as `@source`, `@sink`, `@echo`: the simulator process replaces
 * them with the addresses of the backend servers it started, so the "direct"
 * rows reach the very same servers the pods stand for.
 */
import type { Scenario, ScenarioPod, ScenarioService } from '../../src/sim/types.js';

export const NS = 'bench';

/** A second namespace, with service `first` (pod `first-0`, echo), for the first request into a namespace not used before. */
export const FAR_NS = 'far';

/** Container ports of the bulk pod. */
export const PORTS = { source: 9000, sink: 9001, echo: 7 } as const;

export type BackendRef = '@source' | '@sink' | '@echo';

export interface ScenarioSizes {
  /** Services `cold-N`, one echo pod each, each used once for cold-connect latency. */
  coldPods: number;
  /** Pods behind service `spread` (upgrade counting). */
  spreadPods: number;
  /** Pods behind service `conc` (concurrent sockets). */
  concPods: number;
  /** Services `svc-N`, one echo pod each (many services at once). */
  services: number;
}

let nextIp = 0;
function podIp(): string {
  const i = nextIp++;
  return `10.244.${Math.floor(i / 200) + 1}.${(i % 200) + 10}`;
}

function pod(name: string, app: string, ports: Array<{ name: string; containerPort: number; backend: BackendRef }>): ScenarioPod {
  return { name, namespace: NS, labels: { app }, ip: podIp(), phase: 'Running', ready: true, ports };
}

function service(name: string, app: string, ports: Array<{ name: string; port: number }>): ScenarioService {
  return { name, namespace: NS, selector: { app }, ports: ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.name })) };
}

const ECHO_PORT = [{ name: 'echo', containerPort: PORTS.echo, backend: '@echo' as const }];

export function benchScenario(sizes: ScenarioSizes): Scenario {
  nextIp = 0;
  const pods: ScenarioPod[] = [];
  const services: ScenarioService[] = [];

  pods.push(
    pod('bulk-0', 'bulk', [
      { name: 'source', containerPort: PORTS.source, backend: '@source' },
      { name: 'sink', containerPort: PORTS.sink, backend: '@sink' },
      { name: 'echo', containerPort: PORTS.echo, backend: '@echo' },
    ]),
  );
  services.push(
    service('bulk', 'bulk', [
      { name: 'source', port: PORTS.source },
      { name: 'sink', port: PORTS.sink },
      { name: 'echo', port: PORTS.echo },
    ]),
  );
  for (let i = 0; i < sizes.coldPods; i++) {
    pods.push(pod(`cold-${i}-0`, `cold-${i}`, ECHO_PORT));
    services.push(service(`cold-${i}`, `cold-${i}`, [{ name: 'echo', port: PORTS.echo }]));
  }
  for (let i = 0; i < sizes.spreadPods; i++) pods.push(pod(`spread-${i}`, 'spread', ECHO_PORT));
  services.push(service('spread', 'spread', [{ name: 'echo', port: PORTS.echo }]));
  for (let i = 0; i < sizes.concPods; i++) pods.push(pod(`conc-${i}`, 'conc', ECHO_PORT));
  services.push(service('conc', 'conc', [{ name: 'echo', port: PORTS.echo }]));
  for (let i = 0; i < sizes.services; i++) {
    pods.push(pod(`svc-${i}-0`, `svc-${i}`, ECHO_PORT));
    services.push(service(`svc-${i}`, `svc-${i}`, [{ name: 'echo', port: PORTS.echo }]));
  }
  pods.push({ ...pod('first-0', 'first', ECHO_PORT), namespace: FAR_NS });
  services.push({ ...service('first', 'first', [{ name: 'echo', port: PORTS.echo }]), namespace: FAR_NS });
  return { namespaces: [NS, FAR_NS], pods, services };
}

/** A service's cluster DNS name, as a SOCKS5h client would send it. */
export function serviceHost(name: string): string {
  return `${name}.${NS}.svc.cluster.local`;
}
