/**
 * Pure parsing of the host part of a target into what it could mean inside
 * the cluster. No I/O: where a name is ambiguous (`x.y` is either service x
 * in namespace y or the internet host x.y) this returns every reading in
 * order of preference and the resolver decides with the namespace list.
 *
 * The forms follow the Kubernetes DNS specification
 * (https://github.com/kubernetes/dns/blob/master/docs/specification.md) plus
 * the short forms a pod's resolv.conf search path makes work
 * (`NS.svc.ZONE svc.ZONE ZONE`): `svc`, `svc.ns`, `svc.ns.svc`.
 */
import * as net from 'node:net';

export type ParsedName =
  /** `svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.DOMAIN` */
  | { kind: 'service'; namespace: string; service: string }
  /** `HOST.svc.ns.svc.DOMAIN`: the endpoint of a (headless) service with that hostname. */
  | { kind: 'serviceHost'; namespace: string; service: string; hostname: string }
  /** `pod.ns` or a single label: a pod by name, when there is no service of that name. */
  | { kind: 'pod'; namespace: string; pod: string }
  /** `a-b-c-d.ns.pod.DOMAIN` (IPv6: colons written as dashes). */
  | { kind: 'podIP'; namespace: string; ip: string }
  /** IPv4/IPv6 literal: a ClusterIP or a pod IP (or, if neither, an outside address). */
  | { kind: 'ip'; ip: string }
  /** Anything that is not a cluster name (github.com). */
  | { kind: 'external'; host: string };

export interface ParseOptions {
  /** The kubelet's clusterDomain. Default `cluster.local`. */
  clusterDomain?: string;
  /** Namespace for single-label names (the context's or `-n`). */
  namespace: string;
}

export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';

// DNS-1035 label: what a Service name must be (starts with a letter).
const DNS1035 = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
// DNS-1123 label: namespaces, hostnames, pod names in practice.
const DNS1123 = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function isServiceName(s: string): boolean {
  return DNS1035.test(s);
}

export function isLabel(s: string): boolean {
  return DNS1123.test(s);
}

/**
 * Lower-cases, drops one trailing dot and IPv6 brackets. Returns '' for an
 * empty host.
 */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/**
 * Canonical text of an IP literal, or null if `s` is not one. IPv6 is
 * compressed and lower-cased (as the API server writes ClusterIPs and pod
 * IPs); IPv4-mapped IPv6 (`::ffff:10.0.0.1`) becomes the IPv4 address, since
 * that is how an IPv4 pod IP is stored.
 */
export function canonicalIP(s: string): string | null {
  const family = net.isIP(s);
  if (family === 4) return s;
  if (family !== 6) return null;
  let canon: string;
  try {
    canon = new URL(`http://[${s}]/`).hostname.slice(1, -1);
  } catch {
    // Zone IDs (fe80::1%eth0) are valid for net but not for URL: keep as is.
    return s;
  }
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canon);
  if (mapped) {
    const hi = parseInt(mapped[1] ?? '0', 16);
    const lo = parseInt(mapped[2] ?? '0', 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return canon;
}

/** `10-244-0-10` → `10.244.0.10`; `fd00--1` → `fd00::1`; else null. */
export function dashedIP(label: string): string | null {
  const v4 = label.replace(/-/g, '.');
  if (net.isIPv4(v4)) return v4;
  if (/^[0-9a-f-]+$/.test(label)) {
    const v6 = label.replace(/-/g, ':');
    if (net.isIPv6(v6)) return canonicalIP(v6);
  }
  return null;
}

/**
 * Every reading of `host`, best first. An empty array means the name is
 * inside the cluster domain but is no form Kubernetes DNS answers (the
 * resolver reports NOT_FOUND). An `external` entry, if present, is last.
 */
export function parseName(host: string, opts: ParseOptions): ParsedName[] {
  const name = normalizeHost(host);
  if (name === '') return [];
  const ip = canonicalIP(name);
  if (ip !== null) return [{ kind: 'ip', ip }];

  const domain = normalizeHost(opts.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN);
  const labels = name.split('.');
  const external: ParsedName = { kind: 'external', host: name };

  // Fully qualified: strip the cluster domain; what is left must be a svc or pod form.
  if (domain !== '' && name.endsWith(`.${domain}`)) {
    const rest = name.slice(0, -(domain.length + 1)).split('.');
    return parseQualified(rest) ?? [];
  }
  if (name === domain) return [];

  // `svc.ns.svc`, `host.svc.ns.svc`, `a-b-c-d.ns.pod`: the DNS forms without the zone.
  const last = labels[labels.length - 1];
  if ((last === 'svc' && (labels.length === 3 || labels.length === 4)) || (last === 'pod' && labels.length === 3)) {
    const parsed = parseQualified(labels);
    if (parsed) return parsed;
  }

  if (labels.length === 1) {
    // A single label is a short name in the default namespace, as from a pod
    // in that namespace. `localhost` never is.
    const [only] = labels as [string];
    if (only === 'localhost' || !isLabel(only)) return [external];
    const out: ParsedName[] = [];
    if (isServiceName(only)) out.push({ kind: 'service', namespace: opts.namespace, service: only });
    out.push({ kind: 'pod', namespace: opts.namespace, pod: only });
    return out;
  }

  if (labels.length === 2) {
    // `x.y`: service (or pod) x in namespace y if namespace y exists, else
    // the internet host x.y. The resolver decides.
    const [first, ns] = labels as [string, string];
    if (!isLabel(ns) || !isLabel(first)) return [external];
    const out: ParsedName[] = [];
    if (isServiceName(first)) out.push({ kind: 'service', namespace: ns, service: first });
    out.push({ kind: 'pod', namespace: ns, pod: first });
    out.push(external);
    return out;
  }

  if (labels.length === 3) {
    // `host.svc.ns`: the endpoint `host` of headless service svc in namespace
    // ns, as a pod's DNS search path (`ns.svc.DOMAIN`) resolves it
    // (db-0.db.demo) — or the internet host of that name. The resolver decides.
    const [hostname, service, ns] = labels as [string, string, string];
    if (isLabel(hostname) && isServiceName(service) && isLabel(ns)) return [{ kind: 'serviceHost', namespace: ns, service, hostname }, external];
  }

  return [external];
}

/** `[svc, ns, 'svc']`, `[host, svc, ns, 'svc']`, `[a-b-c-d, ns, 'pod']` → the reading, else null. */
function parseQualified(labels: string[]): ParsedName[] | null {
  const last = labels[labels.length - 1];
  if (last === 'svc') {
    if (labels.length === 3) {
      const [service, namespace] = labels as [string, string, string];
      if (isServiceName(service) && isLabel(namespace)) return [{ kind: 'service', namespace, service }];
    } else if (labels.length === 4) {
      const [hostname, service, namespace] = labels as [string, string, string, string];
      if (isLabel(hostname) && isServiceName(service) && isLabel(namespace)) {
        return [{ kind: 'serviceHost', namespace, service, hostname }];
      }
    }
    return null;
  }
  if (last === 'pod' && labels.length === 3) {
    const [dashed, namespace] = labels as [string, string, string];
    const ip = dashedIP(dashed);
    if (ip !== null && isLabel(namespace)) return [{ kind: 'podIP', namespace, ip }];
    return null;
  }
  return null;
}

/**
 * Does the name's form alone make it a cluster name (no lookup needed)?
 * True for the fully-qualified and `.svc`/`.pod` forms; false for external
 * names; null when it depends on what exists (single labels, `x.y`, IPs).
 */
export function isClusterForm(parsed: ParsedName[]): boolean | null {
  if (parsed.length === 0) return true;
  const first = parsed[0];
  if (!first) return true;
  if (first.kind === 'external') return false;
  if (first.kind === 'ip') return null;
  // (`host.svc.ns` also reads as an internet name: it depends on what exists.)
  if (first.kind === 'serviceHost' || first.kind === 'podIP') return parsed.length === 1 ? true : null;
  // A lone service candidate comes from an explicit `.svc` form.
  if (parsed.length === 1 && first.kind === 'service') return true;
  return null;
}
