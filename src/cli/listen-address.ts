/** `--listen HOST:PORT` (or just PORT) and the loopback rule. */
import { UsageError } from './flags.js';
import { isIP } from 'node:net';

export interface ListenAddress {
  host: string;
  port: number;
}

export function parseListen(value: string): ListenAddress {
  let host = '127.0.0.1';
  let portText = value;
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(value);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2]!;
  } else if (value.includes(':')) {
    const colon = value.lastIndexOf(':');
    host = value.slice(0, colon);
    portText = value.slice(colon + 1);
  }
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 0 && port <= 65535)) throw new UsageError(`--listen: expected HOST:PORT with a port 0-65535, got "${value}"`);
  if (host === '' || (host.includes(':') && !isIP(host))) throw new UsageError(`--listen: "${host}" is not a host name or IP address`);
  return { host, port };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export function formatAddress(address: ListenAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
