/**
 * The kubelet/container-runtime side of port-forward (placeholder: being written).
 */
import type { Duplex } from 'node:stream';
import type { PortForwardHandler, PortForwardTarget, SimCounters } from './types.js';

export interface BackendAddress {
  host: string;
  port: number;
}

export interface SimKubeletOptions {
  /** Where "localhost:PORT inside the pod" really is; null → nothing listens (the dial is refused). */
  backendFor(target: PortForwardTarget, port: number): Promise<BackendAddress | null>;
  /** Counters to update (shared with the API server's). */
  counters: SimCounters;
  /** How long a lone stream waits for its partner (kubelet: 30 s). */
  streamPairTimeoutMs?: number;
}

export class SimKubelet implements PortForwardHandler {
  constructor(readonly options: SimKubeletOptions) {}

  accept(_target: PortForwardTarget, socket: Duplex, _head: Buffer): void {
    socket.destroy();
  }

  /** The pod's sandbox is gone: close all its port-forward connections. */
  closePod(_uid: string): void {}

  /** Close every port-forward connection. */
  close(): void {}
}
