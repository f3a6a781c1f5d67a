/**
 * What `dialer.connect()` accepts: `host:port` (a cluster DNS name, an IP, or
 * any outside host), or an object naming a pod or service directly.
 */
import { KubesocksError } from '../errors.js';
import { isValidPort, parsePortText, splitHostPort } from '../net/address.js';

export interface PodTarget {
  namespace?: string;
  pod: string;
  port: number;
}

export interface ServiceTarget {
  namespace?: string;
  service: string;
  port: number;
}

export interface HostTarget {
  host: string;
  port: number;
}

export type DialTarget = string | PodTarget | ServiceTarget | HostTarget;

export type ParsedTarget = { kind: 'host'; host: string; port: number } | { kind: 'pod'; namespace: string | undefined; pod: string; port: number };

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
  if ('pod' in target) return { kind: 'pod', namespace: target.namespace, pod: target.pod, port };
  if ('service' in target) {
    const host = target.namespace ? `${target.service}.${target.namespace}.svc` : target.service;
    return { kind: 'host', host, port };
  }
  return { kind: 'host', host: target.host, port };
}
