/**
 * Which transport carries a pod's SPDY session: the SPDY/3.1 upgrade (POST)
 * or the WebSocket tunnel (KEP-4006, GET). The session above is the same.
 *
 * `auto` behaves as kubectl 1.31+ (client-go tools/portforward/fallback_dialer.go):
 * WebSockets first, SPDY when the WebSocket upgrade fails — any answer other
 * than our 101 (400 from an API server without PortForwardWebsockets, 403
 * from RBAC that grants `create` but not `get`, a gateway's refusal), or a
 * proxy in the way that refused. docs/transports.md has the measurements
 * behind the order.
 *
 * What worked is remembered for the cluster (one TransportSelector per
 * pool), so a pod's second connection does not pay a failed attempt again.
 * Once a transport has worked, its failures that name the pod (404, not
 * running, 401) are taken at face value; only failures the transport may
 * have caused send the next connection to the other one.
 */
import type { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import { KubesocksError, type ErrorCode } from '../errors.js';
import { upgradeToPortForward, type UpgradeCredentials, type UpgradeOptions } from './upgrade.js';
import { WebSocketUpgradeError, upgradeToWebSocketTunnel } from './websocket-upgrade.js';

const debug = debuglog('kubesocks:tunnel');

export type Transport = 'spdy' | 'websocket';
export type TransportChoice = 'auto' | Transport;

export const TRANSPORT_CHOICES: readonly TransportChoice[] = ['auto', 'spdy', 'websocket'];

/** What `auto` tries first (see docs/transports.md for why). */
export const AUTO_FIRST: Transport = 'websocket';

const LABEL: Record<Transport, string> = { spdy: 'SPDY', websocket: 'WebSocket' };

/** Failures that say something about the pod or the credentials, whatever carried the request. */
const ABOUT_THE_POD: ReadonlySet<ErrorCode> = new Set(['POD_GONE', 'POD_NOT_RUNNING', 'NOT_FOUND', 'UNAUTHORIZED', 'CLOSED']);

export function parseTransport(value: string | undefined): TransportChoice {
  if (value === undefined) return 'auto';
  if ((TRANSPORT_CHOICES as readonly string[]).includes(value)) return value as TransportChoice;
  throw new KubesocksError('CONFIG', `transport: expected one of ${TRANSPORT_CHOICES.join(', ')}, got "${value}"`);
}

export interface OpenedTunnel {
  socket: Duplex;
  transport: Transport;
}

/** How one transport upgrades; replaceable in tests. */
export type Upgrader = (credentials: UpgradeCredentials, options: UpgradeOptions) => Promise<Duplex>;

const UPGRADERS: Record<Transport, Upgrader> = { spdy: upgradeToPortForward, websocket: upgradeToWebSocketTunnel };

export class TransportSelector {
  readonly choice: TransportChoice;
  /** The transport that last worked on this cluster. */
  #proven: Transport | undefined;
  readonly #upgraders: Record<Transport, Upgrader>;
  readonly #opened: Record<Transport, number> = { spdy: 0, websocket: 0 };
  #lastAttempted: Transport = AUTO_FIRST;

  constructor(choice: TransportChoice = 'auto', upgraders: Partial<Record<Transport, Upgrader>> = {}) {
    this.choice = choice;
    this.#upgraders = { ...UPGRADERS, ...upgraders };
  }

  /** The transport the last upgrade tried (for failure metrics). */
  get lastAttempted(): Transport {
    return this.#lastAttempted;
  }

  /** The transport that worked last, if any. */
  get proven(): Transport | undefined {
    return this.#proven;
  }

  /** Connections opened so far, by transport. */
  get opened(): Readonly<Record<Transport, number>> {
    return { ...this.#opened };
  }

  /** Upgrades to the pod over the chosen transport, or in auto mode the first of the two that works. */
  async open(credentials: UpgradeCredentials, options: UpgradeOptions): Promise<OpenedTunnel> {
    if (this.choice !== 'auto') return { socket: await this.#attempt(this.choice, credentials, options), transport: this.choice };
    const first = this.#proven ?? AUTO_FIRST;
    const second: Transport = first === 'websocket' ? 'spdy' : 'websocket';
    try {
      return { socket: await this.#attempt(first, credentials, options), transport: first };
    } catch (error) {
      const firstError = asError(error);
      if (!this.#worthTheOther(first, firstError) || options.signal?.aborted) throw firstError;
      debug('%s upgrade to %s/%s failed (%s); trying %s', LABEL[first], options.namespace, options.pod, firstError.message, LABEL[second]);
      try {
        return { socket: await this.#attempt(second, credentials, options), transport: second };
      } catch (secondError) {
        throw bothFailed(first, firstError, second, asError(secondError), options);
      }
    }
  }

  async #attempt(transport: Transport, credentials: UpgradeCredentials, options: UpgradeOptions): Promise<Duplex> {
    this.#lastAttempted = transport;
    const socket = await this.#upgraders[transport](credentials, options);
    this.#proven = transport;
    this.#opened[transport]++;
    return socket;
  }

  /** Whether a failure of `transport` leaves the other one worth a try. */
  #worthTheOther(transport: Transport, error: KubesocksError): boolean {
    if (transport === 'websocket' && error instanceof WebSocketUpgradeError && !error.transportSuspect) return false;
    if (transport === 'spdy' && error.code === 'API_UNREACHABLE') return false;
    // Once this transport has worked here, a failure about the pod is the pod's.
    if (this.#proven === transport && ABOUT_THE_POD.has(error.code)) return false;
    // Credentials are the same on both transports (each already retried once after a refresh).
    return error.code !== 'UNAUTHORIZED' && error.code !== 'CLOSED';
  }
}

function asError(error: unknown): KubesocksError {
  return error instanceof KubesocksError ? error : new KubesocksError('UPGRADE_FAILED', String(error));
}

/**
 * One line naming both attempts. The code is the second attempt's (the
 * dialer's failover reads it), unless that one only says the transport is
 * unknown there while the first one's says more (e.g. 404 for a deleted pod).
 */
function bothFailed(first: Transport, firstError: KubesocksError, second: Transport, secondError: KubesocksError, options: UpgradeOptions): KubesocksError {
  const target = `${options.namespace}/${options.pod}`;
  const reason = (error: KubesocksError): string => error.message.replace(`port-forward to pod ${target} failed: `, '').replace(`port-forward to pod ${target}: `, '');
  const code = secondError.code === 'UPGRADE_FAILED' && firstError.code !== 'UPGRADE_FAILED' ? firstError.code : secondError.code;
  return new KubesocksError(
    code,
    `port-forward to pod ${target} failed over both transports: ${LABEL[first]}: ${reason(firstError)}; ${LABEL[second]}: ${reason(secondError)}`,
    { cause: secondError },
  );
}
