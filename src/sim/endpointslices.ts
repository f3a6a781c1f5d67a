/**
 * The endpoint-slice controller of the simulated cluster: derives each
 * service's EndpointSlices from its selector and the pods, as
 * pkg/controller/endpointslice does, and writes only what changed.
 *
 * Facts reproduced (endpointslice/util podToEndpoint, getEndpointPorts):
 * - one set of slices per service with a selector; none for ExternalName or
 *   selector-less services;
 * - a pod is an endpoint when it matches, has an IP and has not completed;
 *   `serving` = pod Ready, `ready` = Ready and not terminating,
 *   `terminating` = deletionTimestamp set;
 * - `ports[].port` is the resolved target port: a named targetPort is looked
 *   up among the pod's container ports (same protocol); a pod that lacks it
 *   gets a port set without that port, so pods with different port sets land
 *   in different slices (at most 100 endpoints each);
 * - `hostname` is the pod's hostname when its subdomain names the service;
 * - a service selecting no pods keeps one placeholder slice with no endpoints;
 * - empty lists are served as `null`: the real objects make a protobuf round
 *   trip through etcd, which does not keep `[]`.
 */
import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import type { Endpoint, EndpointPort, EndpointSliceObject, PodObject, ServiceObject } from './objects.js';
import { timestamp } from './objects.js';
import { matchesSelectorMap } from './selectors.js';
import type { ObjectStore } from './store.js';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
export const MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';
export const CONTROLLER_NAME = 'endpointslice-controller.k8s.io';
const HEADLESS_LABEL = 'service.kubernetes.io/headless';
const MAX_ENDPOINTS_PER_SLICE = 100;

/** What one slice should hold. */
interface DesiredSlice {
  addressType: 'IPv4' | 'IPv6';
  ports: EndpointPort[];
  endpoints: Endpoint[];
}

function podIsReady(pod: PodObject): boolean {
  return pod.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True');
}

/** podutil.FindPort: a number is used as is; a name is looked up among the pod's container ports. */
function findPort(pod: PodObject, targetPort: number | string, protocol: string): number | undefined {
  if (typeof targetPort === 'number') return targetPort;
  for (const container of pod.spec.containers) {
    for (const port of container.ports ?? []) {
      if (port.name === targetPort && port.protocol === protocol) return port.containerPort;
    }
  }
  return undefined;
}

function endpointPorts(service: ServiceObject, pod: PodObject): EndpointPort[] {
  const ports: EndpointPort[] = [];
  for (const sp of service.spec.ports ?? []) {
    const port = findPort(pod, sp.targetPort, sp.protocol);
    // A port the pod cannot resolve is left out of this pod's port set (the controller logs and skips it).
    if (port !== undefined) ports.push({ name: sp.name ?? '', protocol: sp.protocol, port });
  }
  return ports;
}

function endpointFor(service: ServiceObject, pod: PodObject, address: string): Endpoint {
  const serving = podIsReady(pod);
  const terminating = pod.metadata.deletionTimestamp !== undefined;
  const { hostname, subdomain, nodeName } = pod.spec;
  return {
    addresses: [address],
    conditions: { ready: serving && !terminating, serving, terminating },
    ...(hostname && subdomain === service.metadata.name ? { hostname } : {}),
    targetRef: { kind: 'Pod', namespace: pod.metadata.namespace ?? '', name: pod.metadata.name, uid: pod.metadata.uid },
    ...(nodeName ? { nodeName } : {}),
  };
}

/** The slices a service should have, or undefined when the controller does not manage it. */
export function desiredSlices(service: ServiceObject, pods: PodObject[]): DesiredSlice[] | undefined {
  const selector = service.spec.selector;
  if (service.spec.type === 'ExternalName' || !selector) return undefined;

  const groups = new Map<string, DesiredSlice>();
  const candidates = pods
    .filter((p) => p.metadata.namespace === service.metadata.namespace && matchesSelectorMap(selector, p.metadata.labels))
    .filter((p) => p.status.podIP !== undefined && p.status.phase !== 'Succeeded' && p.status.phase !== 'Failed')
    .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  for (const pod of candidates) {
    const address = pod.status.podIP ?? '';
    const addressType = isIP(address) === 6 ? 'IPv6' : 'IPv4';
    const ports = endpointPorts(service, pod);
    const key = `${addressType} ${JSON.stringify(ports)}`;
    let group = groups.get(key);
    if (!group) {
      group = { addressType, ports, endpoints: [] };
      groups.set(key, group);
    }
    group.endpoints.push(endpointFor(service, pod, address));
  }
  if (groups.size === 0) return [{ addressType: 'IPv4', ports: [], endpoints: [] }];

  const slices: DesiredSlice[] = [];
  for (const group of groups.values()) {
    for (let i = 0; i < group.endpoints.length; i += MAX_ENDPOINTS_PER_SLICE) {
      slices.push({ ...group, endpoints: group.endpoints.slice(i, i + MAX_ENDPOINTS_PER_SLICE) });
    }
  }
  return slices;
}

const NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** names.SimpleNameGenerator: base truncated to 58 characters plus five random ones. */
function generateName(base: string): string {
  let suffix = '';
  for (let i = 0; i < 5; i++) suffix += NAME_ALPHABET[Math.floor(Math.random() * NAME_ALPHABET.length)];
  return `${base.slice(0, 58)}${suffix}`;
}

function sliceKey(addressType: string, ports: EndpointPort[] | null): string {
  return `${addressType} ${JSON.stringify(ports ?? [])}`;
}

function sliceObject(service: ServiceObject, desired: DesiredSlice, existing: EndpointSliceObject | undefined): EndpointSliceObject {
  const svcName = service.metadata.name;
  const headless = service.spec.clusterIP === 'None';
  return {
    kind: 'EndpointSlice',
    apiVersion: 'discovery.k8s.io/v1',
    metadata: {
      name: existing?.metadata.name ?? generateName(`${svcName}-`),
      generateName: `${svcName}-`,
      namespace: service.metadata.namespace ?? '',
      uid: existing?.metadata.uid ?? randomUUID(),
      resourceVersion: '',
      creationTimestamp: existing?.metadata.creationTimestamp ?? timestamp(),
      labels: {
        [MANAGED_BY_LABEL]: CONTROLLER_NAME,
        [SERVICE_NAME_LABEL]: svcName,
        ...(headless ? { [HEADLESS_LABEL]: '' } : {}),
      },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: svcName, uid: service.metadata.uid, controller: true, blockOwnerDeletion: true }],
    },
    addressType: desired.addressType,
    endpoints: desired.endpoints.length > 0 ? desired.endpoints : null,
    ports: desired.ports.length > 0 ? desired.ports : null,
  };
}

/** Whether the endpoint-slice controller manages `slice` for a service (the label pair it sets). */
export function managedServiceName(slice: EndpointSliceObject): string | undefined {
  const labels = slice.metadata.labels;
  return labels?.[MANAGED_BY_LABEL] === CONTROLLER_NAME ? labels[SERVICE_NAME_LABEL] : undefined;
}

/**
 * Brings the stored slices of service `namespace/name` in line with the
 * service (undefined when it was deleted) and `pods` (the pods of its
 * namespace its selector may match; others are ignored). `existing` are the
 * slices the controller manages for it now. Slices keep their name and uid
 * while their address type stays the same.
 */
export function reconcileServiceSlices(
  store: ObjectStore,
  namespace: string,
  service: ServiceObject | undefined,
  pods: PodObject[],
  existing: EndpointSliceObject[],
): void {
  const desired = service ? (desiredSlices(service, pods) ?? []) : [];
  // Slices whose address type and port set stay the same are updated in place.
  const sameShape = new Map<string, EndpointSliceObject[]>();
  for (const slice of existing) {
    const key = sliceKey(slice.addressType, slice.ports);
    sameShape.set(key, [...(sameShape.get(key) ?? []), slice]);
  }
  const matched = desired.map((d) => sameShape.get(sliceKey(d.addressType, d.ports))?.shift());
  // As the reconciler's finalize() does, a slice about to be deleted is recycled
  // (updated under its name) for a slice about to be created, if the address type matches.
  const unused = existing.filter((s) => !matched.includes(s));
  const previous = matched.map((m, i) => {
    if (m) return m;
    const index = unused.findIndex((s) => s.addressType === desired[i]?.addressType);
    return index === -1 ? undefined : unused.splice(index, 1)[0];
  });
  desired.forEach((d, i) => {
    // `service` is defined whenever anything is desired.
    if (service) store.put('endpointslices', sliceObject(service, d, previous[i]));
  });
  for (const slice of unused) store.remove('endpointslices', namespace, slice.metadata.name);
}
