/**
 * The kubelet's part of port-forward for pods whose sandbox is real: ask the
 * runtime for a streaming URL (CRI PortForward), replay the client's upgrade
 * request to it and splice the bytes both ways — the 101 or the runtime's
 * refusal included. No SPDY here: the client and containerd speak it to each
 * other, as through a real kubelet's UpgradeAwareHandler.
 *
 * Source: kubernetes pkg/kubelet/server/server.go getPortForward →
 * proxyStream (k8s.io/apimachinery pkg/util/proxy/upgradeaware.go), which
 * sends the request to the CRI URL over HTTP/1.1 and copies both ways.
 */
import type { IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import { writeRawStatus } from '../portforward.js';
import { internalError } from '../status.js';
import type { PortForwardRelay, PortForwardTarget, SimCounters } from '../types.js';
import type { CriClient } from './cri.js';

const debug = debuglog('kubesocks:runtime');

/** Request headers a proxy does not pass on: its own hop, and the client's credentials for the API server. */
const DROPPED_HEADERS = new Set(['host', 'authorization', 'content-length', 'transfer-encoding', 'proxy-authorization']);

export interface RuntimeRelayOptions {
  cri: CriClient;
  /** The pod's sandbox id, once it runs; undefined when it has none. */
  sandboxOf(uid: string): Promise<string | undefined>;
  /** Whether pod `uid` is a real one (its port-forward is relayed here). */
  owns(uid: string): boolean;
  counters: SimCounters;
}

interface Splice {
  client: Duplex;
  upstream: Socket | undefined;
}

export class RuntimeRelay implements PortForwardRelay {
  readonly #options: RuntimeRelayOptions;
  readonly #byPod = new Map<string, Set<Splice>>();

  constructor(options: RuntimeRelayOptions) {
    this.#options = options;
  }

  owns(uid: string): boolean {
    return this.#options.owns(uid);
  }

  relay(target: PortForwardTarget, req: IncomingMessage, client: Duplex, head: Buffer): void {
    const splice: Splice = { client, upstream: undefined };
    let splices = this.#byPod.get(target.uid);
    if (!splices) {
      splices = new Set();
      this.#byPod.set(target.uid, splices);
    }
    splices.add(splice);
    client.once('close', () => {
      splice.upstream?.destroy();
      this.#forget(target.uid, splice);
    });
    client.pause();
    void this.#start(target, req, splice, head).catch((err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      debug('port-forward %s/%s: %s', target.namespace, target.name, message);
      if (!client.destroyed) writeRawStatus(client, internalError(message).status);
    });
  }

  async #start(target: PortForwardTarget, req: IncomingMessage, splice: Splice, head: Buffer): Promise<void> {
    const { client } = splice;
    const sandboxId = await this.#options.sandboxOf(target.uid);
    // What the kubelet answers when the pod has no running sandbox.
    if (!sandboxId) throw new Error(`pod not found ("${target.name}_${target.namespace}")`);
    const url = new URL(await this.#options.cri.portForward(sandboxId));
    if (client.destroyed) return;
    if (url.protocol !== 'http:') throw new Error(`the runtime's streaming URL is not plain HTTP: ${url.protocol}`);
    const upstream = connect(Number(url.port || 80), url.hostname);
    splice.upstream = upstream;
    upstream.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      upstream.once('connect', resolve);
      upstream.once('error', reject);
    });
    upstream.removeAllListeners('error');
    if (client.destroyed) {
      upstream.destroy();
      return;
    }
    upstream.write(requestHead(req, url));
    if (head.length > 0) upstream.write(head);
    upstream.once('data', (chunk: Buffer) => {
      if (chunk.subarray(0, 12).toString('latin1') === 'HTTP/1.1 101') this.#options.counters.upgrades++;
    });
    // Byte for byte both ways; a FIN is passed on as a FIN, an error closes both.
    upstream.pipe(client);
    client.pipe(upstream);
    client.resume();
    const destroyBoth = (): void => {
      client.destroy();
      upstream.destroy();
    };
    upstream.once('error', destroyBoth);
    client.once('error', destroyBoth);
    upstream.once('close', () => client.destroy());
  }

  #forget(uid: string, splice: Splice): void {
    const splices = this.#byPod.get(uid);
    splices?.delete(splice);
    if (splices?.size === 0) this.#byPod.delete(uid);
  }

  /** The pod's sandbox is going: its port-forward connections break, as the API server's proxy to a vanished kubelet stream does. */
  closePod(uid: string): void {
    for (const splice of this.#byPod.get(uid) ?? []) {
      splice.client.destroy();
      splice.upstream?.destroy();
    }
    this.#byPod.delete(uid);
  }

  close(): void {
    for (const uid of [...this.#byPod.keys()]) this.closePod(uid);
  }
}

/** The client's request line and headers, aimed at the streaming URL (HTTP/1.1, never h2). */
function requestHead(req: IncomingMessage, url: URL): string {
  const lines = [`${req.method ?? 'POST'} ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] ?? '';
    if (DROPPED_HEADERS.has(name.toLowerCase())) continue;
    lines.push(`${name}: ${req.rawHeaders[i + 1] ?? ''}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}
