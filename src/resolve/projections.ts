/**
 * Compact projections of Service, EndpointSlice and Pod: only what name
 * resolution reads. A full Pod is several KiB of JSON; a namespace with
 * 10,000 services must not keep 10,000 of each object in memory.
 *
 * Conventions to keep them small: fields at their common default are left
 * out (protocol TCP, type ClusterIP), flags are present only when true.
 */
import { canonicalIP } from './names.js';

export interface PortInfo {
  /** '' for an unnamed port (a single-port service may leave it out). */
  name: string;
  port: number;
  /** Absent = TCP. */
  protocol?: string;
}

export interface ServiceInfo {
  metadata: { name: string; resourceVersion?: string };
  /** Absent = ClusterIP. */
  type?: string;
  /** ClusterIPs (absent when headless or ExternalName). */
  clusterIPs?: string[];
  headless?: true;
  externalName?: string;
  ports: PortInfo[];
  /** Has a selector (its endpoints are managed by the endpoint-slice controller). */
  selector?: true;
}

export interface EndpointInfo {
  /** The pod's name, when targetRef is a Pod. */
  pod?: string;
  uid?: string;
  /** targetRef kind when it is not a Pod (or absent when there is no targetRef at all). */
  refKind?: string;
  /** First address, kept only for endpoints that are not pods (for the error message). */
  address?: string;
  ready: boolean;
  terminating: boolean;
  hostname?: string;
}

export interface SliceInfo {
  metadata: { name: string; resourceVersion?: string };
  /** Label kubernetes.io/service-name. */
  service: string;
  ports: PortInfo[];
  endpoints: EndpointInfo[];
}

export interface PodInfo {
  metadata: { name: string; resourceVersion?: string };
  uid?: string;
  phase: string;
  /** Pod IPs, canonical text. */
  ips: string[];
  /** deletionTimestamp is set. */
  deleting?: true;
}

type Raw = Record<string, unknown>;

function obj(v: unknown): Raw {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Raw) : {};
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function meta(raw: Raw): { name: string; resourceVersion?: string } {
  const m = obj(raw.metadata);
  const out: { name: string; resourceVersion?: string } = { name: str(m.name) ?? '' };
  const rv = str(m.resourceVersion);
  if (rv) out.resourceVersion = rv;
  return out;
}

function ports(list: unknown): PortInfo[] {
  return arr(list).map((p) => {
    const o = obj(p);
    const out: PortInfo = { name: str(o.name) ?? '', port: typeof o.port === 'number' ? o.port : 0 };
    const proto = str(o.protocol);
    if (proto && proto !== 'TCP') out.protocol = proto;
    return out;
  });
}

export function projectService(raw: unknown): ServiceInfo | null {
  const o = obj(raw);
  const spec = obj(o.spec);
  const out: ServiceInfo = { metadata: meta(o), ports: ports(spec.ports) };
  if (!out.metadata.name) return null;
  const type = str(spec.type);
  if (type && type !== 'ClusterIP') out.type = type;
  const ips = arr(spec.clusterIPs).map(str).filter((s): s is string => !!s);
  const single = str(spec.clusterIP);
  if (ips.length === 0 && single) ips.push(single);
  if (ips.includes('None')) out.headless = true;
  else {
    const canon = ips.map((ip) => canonicalIP(ip)).filter((s): s is string => !!s);
    if (canon.length > 0) out.clusterIPs = canon;
  }
  const ext = str(spec.externalName);
  if (ext) out.externalName = ext;
  if (Object.keys(obj(spec.selector)).length > 0) out.selector = true;
  return out;
}

export function projectSlice(raw: unknown): SliceInfo | null {
  const o = obj(raw);
  const m = meta(o);
  if (!m.name) return null;
  const labels = obj(obj(o.metadata).labels);
  const service = str(labels['kubernetes.io/service-name']);
  if (!service) return null; // not a service's slice: nothing to resolve through it
  const endpoints = arr(o.endpoints).map((e): EndpointInfo => {
    const eo = obj(e);
    const cond = obj(eo.conditions);
    const ref = obj(eo.targetRef);
    // discovery/v1: a nil `ready` is an unknown state consumers treat as ready; nil `terminating` is false.
    const ep: EndpointInfo = { ready: cond.ready !== false, terminating: cond.terminating === true };
    const kind = str(ref.kind);
    if (kind === 'Pod' && str(ref.name)) {
      ep.pod = str(ref.name) as string;
      const uid = str(ref.uid);
      if (uid) ep.uid = uid;
    } else {
      if (kind) ep.refKind = kind;
      const addr = str(arr(eo.addresses)[0]);
      if (addr) ep.address = addr;
    }
    const hostname = str(eo.hostname);
    if (hostname) ep.hostname = hostname;
    return ep;
  });
  return { metadata: m, service, ports: ports(o.ports), endpoints };
}

export function projectPod(raw: unknown): PodInfo | null {
  const o = obj(raw);
  const m = meta(o);
  if (!m.name) return null;
  const status = obj(o.status);
  const ips = arr(status.podIPs)
    .map((p) => str(obj(p).ip))
    .filter((s): s is string => !!s);
  const single = str(status.podIP);
  if (ips.length === 0 && single) ips.push(single);
  const out: PodInfo = {
    metadata: m,
    phase: str(status.phase) ?? 'Unknown',
    ips: ips.map((ip) => canonicalIP(ip) ?? ip),
  };
  const uid = str(obj(o.metadata).uid);
  if (uid) out.uid = uid;
  if (str(obj(o.metadata).deletionTimestamp)) out.deleting = true;
  return out;
}

/**
 * The legacy v1 Endpoints object of a service, as one SliceInfo: the last
 * resort for a user who may `get` but not `list` EndpointSlices (its name is
 * the service's, so a get suffices).
 */
export function sliceFromEndpoints(raw: unknown, service: string): SliceInfo[] {
  const o = obj(raw);
  return arr(o.subsets).map((s, i): SliceInfo => {
    const so = obj(s);
    const endpoints: EndpointInfo[] = [];
    const add = (list: unknown, ready: boolean): void => {
      for (const a of arr(list)) {
        const ao = obj(a);
        const ref = obj(ao.targetRef);
        const ep: EndpointInfo = { ready, terminating: false };
        if (str(ref.kind) === 'Pod' && str(ref.name)) {
          ep.pod = str(ref.name) as string;
          const uid = str(ref.uid);
          if (uid) ep.uid = uid;
        } else {
          const kind = str(ref.kind);
          if (kind) ep.refKind = kind;
          const ip = str(ao.ip);
          if (ip) ep.address = ip;
        }
        const hostname = str(ao.hostname);
        if (hostname) ep.hostname = hostname;
        endpoints.push(ep);
      }
    };
    add(so.addresses, true);
    add(so.notReadyAddresses, false);
    return { metadata: { name: `${service}-endpoints-${i}` }, service, ports: ports(so.ports), endpoints };
  });
}
