/**
 * The endpoints controller of the simulated cluster: the legacy core/v1
 * Endpoints object of each service, derived from its selector and pods as
 * pkg/controller/endpoint (syncService) does. Clients that may `get
 * endpoints/NAME` but not list EndpointSlices read their pods from it.
 *
 * Facts reproduced:
 * - one Endpoints per service with a selector, named after the service (none
 *   for ExternalName or selector-less services); labels are the service's,
 *   plus `service.kubernetes.io/headless` for a headless one;
 * - a pod is an address when it matches, has an IP, has not completed and is
 *   not terminating (ShouldPodBeInEndpoints without publishNotReadyAddresses);
 *   ready pods go to `addresses`, the others to `notReadyAddresses`, each with
 *   `nodeName` and a Pod `targetRef`, and `hostname` when the pod's subdomain
 *   names the service;
 * - ports are the resolved target ports, named as the service's ports; a pod
 *   lacking a named port is left out of that port only; a headless service
 *   without ports lists its addresses with no ports;
 * - endpoints.RepackSubsets: addresses that offer the same ports share a
 *   subset; addresses sorted by IP (the real order of ports and subsets
 *   follows a hash: here ports go by name, subsets by first address, then ports);
 * - more than 1000 addresses are truncated proportionally per subset and the
 *   object is annotated `endpoints.kubernetes.io/over-capacity: truncated`;
 * - empty lists are left out (`omitempty`): a service selecting no ready or
 *   unready pod has an Endpoints object without `subsets`.
 */
import { randomUUID } from 'node:crypto';
import type { EndpointAddress, EndpointSubset, EndpointsObject, EndpointsPort, PodObject, ServiceObject } from './objects.js';
import { timestamp } from './objects.js';

const HEADLESS_LABEL = 'service.kubernetes.io/headless';
const OVER_CAPACITY_ANNOTATION = 'endpoints.kubernetes.io/over-capacity';
/** The endpoints controller's maxCapacity. */
const MAX_CAPACITY = 1000;

function podIsReady(pod: PodObject): boolean {
  return pod.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True');
}

/** podutil.FindPort: a number as is; a name looked up among the pod's container ports of that protocol. */
function findPort(pod: PodObject, targetPort: number | string, protocol: string): number | undefined {
  if (typeof targetPort === 'number') return targetPort;
  for (const container of pod.spec.containers) {
    for (const port of container.ports ?? []) if (port.name === targetPort && port.protocol === protocol) return port.containerPort;
  }
  return undefined;
}

function addressFor(service: ServiceObject, pod: PodObject): EndpointAddress {
  const { hostname, subdomain, nodeName } = pod.spec;
  return {
    ip: pod.status.podIP ?? '',
    ...(hostname && subdomain === service.metadata.name ? { hostname } : {}),
    ...(nodeName ? { nodeName } : {}),
    targetRef: { kind: 'Pod', namespace: pod.metadata.namespace ?? '', name: pod.metadata.name, uid: pod.metadata.uid },
  };
}

function compareAddresses(a: EndpointAddress, b: EndpointAddress): number {
  if (a.ip !== b.ip) return a.ip < b.ip ? -1 : 1;
  const au = a.targetRef?.uid ?? '';
  const bu = b.targetRef?.uid ?? '';
  return au < bu ? -1 : au > bu ? 1 : 0;
}

function portKey(p: EndpointsPort | undefined): string {
  return p ? `${p.name ?? ''}/${p.protocol}/${p.port}` : '';
}

/** endpoints.RepackSubsets: one subset per distinct set of (address, ready) that offers the same ports. */
function repack(entries: Array<{ address: EndpointAddress; ready: boolean; ports: EndpointsPort[] | undefined }>): EndpointSubset[] {
  // Port (or the no-port sentinel) → the addresses offering it.
  const byPort = new Map<string, { port: EndpointsPort | undefined; addresses: Map<string, { address: EndpointAddress; ready: boolean }> }>();
  for (const e of entries) {
    const addrKey = `${e.address.ip}/${e.address.targetRef?.uid ?? ''}`;
    for (const port of e.ports ?? [undefined]) {
      const k = portKey(port);
      let slot = byPort.get(k);
      if (!slot) {
        slot = { port, addresses: new Map() };
        byPort.set(k, slot);
      }
      slot.addresses.set(addrKey, { address: e.address, ready: e.ready });
    }
  }
  // Address set → the ports it offers.
  const bySet = new Map<string, { addresses: Array<{ address: EndpointAddress; ready: boolean }>; ports: EndpointsPort[] }>();
  for (const { port, addresses } of byPort.values()) {
    const key = [...addresses.entries()].map(([k, v]) => `${k}:${v.ready}`).sort().join(',');
    let group = bySet.get(key);
    if (!group) {
      group = { addresses: [...addresses.values()], ports: [] };
      bySet.set(key, group);
    }
    if (port) group.ports.push(port);
  }
  const subsets: EndpointSubset[] = [];
  for (const group of bySet.values()) {
    const ready = group.addresses.filter((a) => a.ready).map((a) => a.address).sort(compareAddresses);
    const notReady = group.addresses.filter((a) => !a.ready).map((a) => a.address).sort(compareAddresses);
    const ports = group.ports.sort((a, b) => (portKey(a) < portKey(b) ? -1 : 1));
    subsets.push({
      ...(ready.length > 0 ? { addresses: ready } : {}),
      ...(notReady.length > 0 ? { notReadyAddresses: notReady } : {}),
      ...(ports.length > 0 ? { ports } : {}),
    });
  }
  const order = (s: EndpointSubset) => `${(s.addresses ?? s.notReadyAddresses)?.[0]?.ip ?? ''} ${(s.ports ?? []).map(portKey).join(',')}`;
  return subsets.sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
}

/** truncateEndpoints: keeps MAX_CAPACITY addresses, ready ones first, proportionally per subset. */
function truncate(subsets: EndpointSubset[]): boolean {
  let totalReady = 0;
  let totalNotReady = 0;
  for (const s of subsets) {
    totalReady += s.addresses?.length ?? 0;
    totalNotReady += s.notReadyAddresses?.length ?? 0;
  }
  if (totalReady + totalNotReady <= MAX_CAPACITY) return false;
  const truncateReady = totalReady > MAX_CAPACITY;
  const max = truncateReady ? MAX_CAPACITY : MAX_CAPACITY - totalReady;
  const total = truncateReady ? totalReady : totalNotReady;
  let canBeAdded = max;
  for (const s of subsets) {
    const inSubset = (truncateReady ? s.addresses?.length : s.notReadyAddresses?.length) ?? 0;
    const toBeAdded = Math.min(Math.ceil((inSubset / total) * max), canBeAdded);
    if (truncateReady) {
      s.addresses = s.addresses?.slice(0, toBeAdded);
      delete s.notReadyAddresses;
      canBeAdded -= s.addresses?.length ?? 0;
    } else {
      s.notReadyAddresses = s.notReadyAddresses?.slice(0, toBeAdded);
      canBeAdded -= s.notReadyAddresses?.length ?? 0;
    }
    if (s.addresses?.length === 0) delete s.addresses;
    if (s.notReadyAddresses?.length === 0) delete s.notReadyAddresses;
  }
  return true;
}

/**
 * The Endpoints object `service` should have, given `pods` (the pods its
 * selector matches, sorted by name), or undefined when the controller
 * manages none. The `existing` object's uid and creation time are kept.
 */
export function desiredEndpoints(service: ServiceObject, pods: PodObject[], existing: EndpointsObject | undefined): EndpointsObject | undefined {
  if (service.spec.type === 'ExternalName' || !service.spec.selector) return undefined;
  const headless = service.spec.clusterIP === 'None';
  const servicePorts = service.spec.ports ?? [];
  const entries: Array<{ address: EndpointAddress; ready: boolean; ports: EndpointsPort[] | undefined }> = [];
  for (const pod of pods) {
    if (pod.status.phase === 'Succeeded' || pod.status.phase === 'Failed') continue;
    if (pod.status.podIP === undefined || pod.metadata.deletionTimestamp !== undefined) continue;
    const address = addressFor(service, pod);
    const ready = podIsReady(pod);
    if (servicePorts.length === 0) {
      if (headless) entries.push({ address, ready, ports: undefined });
      continue;
    }
    const ports: EndpointsPort[] = [];
    for (const sp of servicePorts) {
      const port = findPort(pod, sp.targetPort, sp.protocol);
      if (port !== undefined) ports.push({ ...(sp.name ? { name: sp.name } : {}), port, protocol: sp.protocol });
    }
    if (ports.length > 0) entries.push({ address, ready, ports });
  }
  const subsets = repack(entries);
  const truncated = truncate(subsets);
  const labels = { ...(service.metadata.labels ?? {}), ...(headless ? { [HEADLESS_LABEL]: '' } : {}) };
  return {
    kind: 'Endpoints',
    apiVersion: 'v1',
    metadata: {
      name: service.metadata.name,
      namespace: service.metadata.namespace ?? '',
      uid: existing?.metadata.uid ?? randomUUID(),
      resourceVersion: '',
      creationTimestamp: existing?.metadata.creationTimestamp ?? timestamp(),
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
      ...(truncated ? { annotations: { [OVER_CAPACITY_ANNOTATION]: 'truncated' } } : {}),
    },
    ...(subsets.length > 0 ? { subsets } : {}),
  };
}
