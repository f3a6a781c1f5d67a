/** Flag parsing shared by the commands (node:util parseArgs: strict, no dependency). */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { TRANSPORT_CHOICES, type TransportChoice } from '../tunnel/transport.js';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type FlagOptions = NonNullable<ParseArgsConfig['options']>;
export type ParsedFlags<T extends FlagOptions> = ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: true; strict: true }>>;

export function parseFlags<T extends FlagOptions>(args: string[], options: T): ParsedFlags<T> {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(usageMessage((error as Error).message));
  }
}

/**
 * parseArgs' messages, in our words: the flag, what is wrong, where to look
 * (its own text suggests "-- \"--x\"", which is no help here).
 */
function usageMessage(message: string): string {
  const unknown = /Unknown option '([^']+)'/.exec(message);
  if (unknown) return `unknown flag ${unknown[1]} (see kubesocks --help)`;
  const missing = /Option '(?:-\w, )?(--[\w-]+)[^']*' argument missing/.exec(message);
  if (missing) return `${missing[1]} needs a value (see kubesocks --help)`;
  const noValue = /Option '(?:-\w, )?(--[\w-]+)' does not take an argument/.exec(message);
  if (noValue) return `${noValue[1]} takes no value (see kubesocks --help)`;
  return `${message.replace(/^TypeError \[[A-Z_]+\]: /, '')} (see kubesocks --help)`;
}

export function parseDuration(value: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!match) throw new UsageError(`${flag}: expected a duration such as 500ms, 30s, 1m, got "${value}"`);
  const n = Number(match[1]);
  const unit = match[2] ?? 's';
  return Math.round(n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h']);
}

/** `--transport auto|spdy|websocket` (default auto). */
export function parseTransportFlag(value: string | undefined): TransportChoice {
  if (value === undefined) return 'auto';
  if ((TRANSPORT_CHOICES as readonly string[]).includes(value)) return value as TransportChoice;
  throw new UsageError(`--transport: expected one of ${TRANSPORT_CHOICES.join(', ')}, got "${value}"`);
}

/** The help line every command shows for --transport. */
export const TRANSPORT_HELP = '--transport T          port-forward over auto (default: WebSocket, else SPDY, as kubectl), spdy or websocket';
