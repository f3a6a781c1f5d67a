/**
 * What `dialer.connect()` accepts: `host:port` (a cluster DNS name, an IP, or
 * any outside host), or an object naming a pod or service directly.
 */
import { KubesocksError } from '../errors.js';
import { isValidPort, parsePortText, splitHostPort } from '../net/address.js';

/** Which served context a target object means: its alias or kubeconfig context name. Default: the default context. */
interface InContext {
  context?: string;
}

export interface PodTarget extends InContext {
  namespace?: string;
  pod: string;
  port: number;
}

export interface ServiceTarget extends InContext {
  namespace?: string;
  service: string;
  port: number;
}

export interface HostTarget extends InContext {
  host: string;
  port: number;
}

export type DialTarget = string | PodTarget | ServiceTarget | HostTarget;

export type ParsedTarget = ({ kind: 'host'; host: string; port: number } | { kind: 'pod'; namespace: string | undefined; pod: string; port: number }) & {
  /** The context asked for by the target object, if any. */
  context?: string | undefined;
};

export function parsePort(value: string | number, what: string): number {
  const port = typeof value === 'number' ? value : (parsePortText(value) ?? NaN);
  if (!isValidPort(port)) {
    throw new KubesocksError('BAD_TARGET', `${what}: expected a port 1-65535, got ${JSON.stringify(value)}`);
  }
  return port;
}

/** `host:port` or `[v6]:port`, the port required. */
function parseHostPort(value: string): { host: string; port: number } {
  const split = splitHostPort(value);
  if (!split || split.port === undefined) {
    throw new KubesocksError('BAD_TARGET', `"${value}" is not HOST:PORT (write IPv6 addresses as [addr]:port)`);
  }
  return { host: split.host, port: parsePort(split.port, value) };
}

export function parseTarget(target: DialTarget): ParsedTarget {
  if (typeof target === 'string') return { kind: 'host', ...parseHostPort(target) };
  const port = parsePort(target.port, 'port');
  const { context } = target;
  if (context !== undefined && (typeof context !== 'string' || context === '')) {
    throw new KubesocksError('BAD_TARGET', `context: expected a context alias or name, got ${JSON.stringify(context)}`);
  }
  if ('pod' in target) return { kind: 'pod', namespace: target.namespace, pod: target.pod, port, context };
  if ('service' in target) {
    const host = target.namespace ? `${target.service}.${target.namespace}.svc` : target.service;
    return { kind: 'host', host, port, context };
  }
  return { kind: 'host', host: target.host, port, context };
}
