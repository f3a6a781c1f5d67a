/**
 * `kubesocks forward` arguments, as kubectl port-forward takes them:
 * `TYPE/NAME` (or a bare pod NAME) and port specs `[LOCAL:]REMOTE`, where
 * REMOTE may be a port name and an empty LOCAL picks a free port.
 */
import type { ForwardKind, ForwardResource, PortSpec } from '../forward/resource.js';
import { parsePortText } from '../net/address.js';
import { UsageError } from './flags.js';

const KIND_ALIASES: Record<string, ForwardKind> = {
  pod: 'pod',
  pods: 'pod',
  po: 'pod',
  service: 'service',
  services: 'service',
  svc: 'service',
  deployment: 'deployment',
  deployments: 'deployment',
  deploy: 'deployment',
  'deployment.apps': 'deployment',
  statefulset: 'statefulset',
  statefulsets: 'statefulset',
  sts: 'statefulset',
  'statefulset.apps': 'statefulset',
  replicaset: 'replicaset',
  replicasets: 'replicaset',
  rs: 'replicaset',
  'replicaset.apps': 'replicaset',
};

export function parseResource(text: string): ForwardResource {
  const slash = text.indexOf('/');
  if (slash === -1) return { kind: 'pod', name: checkName(text, text) };
  const kind = KIND_ALIASES[text.slice(0, slash).toLowerCase()];
  if (!kind) {
    throw new UsageError(`"${text.slice(0, slash)}" cannot be forwarded: use pod, service (svc), deployment (deploy), statefulset (sts) or replicaset (rs)`);
  }
  return { kind, name: checkName(text.slice(slash + 1), text) };
}

function checkName(name: string, text: string): string {
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name)) throw new UsageError(`"${text}": "${name}" is not a valid resource name`);
  return name;
}

function port(text: string, spec: string, allowZero: boolean): number {
  const n = parsePortText(text);
  if (n === undefined || (n === 0 && !allowZero)) throw new UsageError(`port spec "${spec}": "${text}" is not a port number 1-65535`);
  return n;
}

export function parsePortSpec(text: string): PortSpec {
  const parts = text.split(':');
  if (parts.length > 2 || parts.some((p, i) => p === '' && !(i === 0 && parts.length === 2))) {
    throw new UsageError(`port spec "${text}": expected [LOCAL:]REMOTE, e.g. 8080, 8080:80, :80 or 8443:https`);
  }
  const remoteText = parts[parts.length - 1]!;
  const remote = /^\d+$/.test(remoteText) ? port(remoteText, text, false) : checkPortName(remoteText, text);
  if (parts.length === 1) {
    if (typeof remote === 'string') throw new UsageError(`port spec "${text}": a named port needs a local port, e.g. 8443:${remote}`);
    return { local: remote, remote, text };
  }
  const localText = parts[0]!;
  return { local: localText === '' ? 0 : port(localText, text, true), remote, text };
}

function checkPortName(name: string, spec: string): string {
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name) || name.length > 15) {
    throw new UsageError(`port spec "${spec}": "${name}" is neither a port number nor a port name`);
  }
  return name;
}

/** `--address`: comma list; `localhost` means 127.0.0.1 and ::1, as in kubectl. */
export function parseAddresses(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(',').map((a) => a.trim()).filter(Boolean)) {
    for (const address of raw === 'localhost' ? ['127.0.0.1', '::1'] : [raw]) if (!out.includes(address)) out.push(address);
  }
  if (out.length === 0) throw new UsageError('--address: give at least one address');
  return out;
}
