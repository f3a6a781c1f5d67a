/**
 * The local listeners of `kubesocks forward`: one per (address, port spec),
 * each accepted socket relayed to a fresh connection from the ForwardTarget.
 * A failed connection is reported and closed; the command keeps running.
 */
import * as net from 'node:net';
import { asKubesocksError, KubesocksError } from '../errors.js';
import { formatHostPort } from '../net/address.js';
import { relay } from '../net/relay.js';
import type { PortSpec } from './resource.js';
import type { ForwardTarget } from './forward-target.js';

export interface ForwarderOptions {
  target: ForwardTarget;
  ports: PortSpec[];
  addresses: string[];
  /** Progress lines kubectl prints on stdout (`Forwarding from …`, `Handling connection for …`). */
  info(line: string): void;
  /** Failure lines. */
  error(line: string): void;
}

export interface Listening {
  address: string;
  port: number;
  remote: number | string;
}

export class Forwarder {
  readonly #options: ForwarderOptions;
  readonly #servers: net.Server[] = [];
  readonly #sockets = new Set<net.Socket>();

  constructor(options: ForwarderOptions) {
    this.#options = options;
  }

  /**
   * Listens on every address for every port spec and prints kubectl's
   * "Forwarding from" lines. Rejects LISTEN_FAILED when a port spec could
   * not be bound on any address.
   */
  async start(): Promise<Listening[]> {
    const listening: Listening[] = [];
    for (const spec of this.#options.ports) {
      const remoteNumber = await this.#options.target.remoteNumber(spec.remote);
      let port = spec.local;
      let bound = 0;
      const failures: string[] = [];
      for (const address of this.#options.addresses) {
        try {
          const server = await this.#listen(address, port, spec.remote);
          port = (server.address() as net.AddressInfo).port; // a picked port is reused on the other addresses
          bound++;
          listening.push({ address, port, remote: spec.remote });
          this.#options.info(`Forwarding from ${formatHostPort(address, port)} -> ${remoteNumber}`);
        } catch (error) {
          failures.push(`${formatHostPort(address, port)}: ${(error as Error).message}`);
        }
      }
      if (bound === 0) throw new KubesocksError('LISTEN_FAILED', `unable to listen on any of the requested ports for ${spec.text}: ${failures.join('; ')}`);
      for (const failure of failures) this.#options.error(`unable to listen on ${failure}`);
    }
    return listening;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await Promise.all(this.#servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }

  #listen(address: string, port: number, remote: number | string): Promise<net.Server> {
    return new Promise((resolve, reject) => {
      const server = net.createServer({ allowHalfOpen: true }, (socket) => this.#handle(socket, port || (server.address() as net.AddressInfo).port, remote));
      server.once('error', reject);
      server.listen({ host: address, port, ipv6Only: address.includes(':') }, () => {
        server.off('error', reject);
        server.on('error', (error) => this.#options.error(`listener ${formatHostPort(address, port)}: ${error.message}`));
        this.#servers.push(server);
        resolve(server);
      });
    });
  }

  #handle(socket: net.Socket, localPort: number, remote: number | string): void {
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    socket.on('error', () => {});
    socket.setNoDelay(true);
    this.#options.info(`Handling connection for ${localPort}`);
    const abort = new AbortController();
    const onEarlyClose = (): void => abort.abort();
    socket.once('close', onEarlyClose);
    socket.pause();
    this.#options.target.connect(remote, abort.signal).then(
      (upstream) => {
        socket.off('close', onEarlyClose);
        if (socket.destroyed) {
          upstream.destroy();
          return;
        }
        relay(socket, upstream, Buffer.alloc(0), (result) => {
          if (result.error) this.#options.error(`error forwarding connection for ${localPort} via ${upstream.via}: ${result.error.message}`);
        });
        socket.resume();
      },
      (error: unknown) => {
        socket.off('close', onEarlyClose);
        if (!abort.signal.aborted) {
          const failure = asKubesocksError(error);
          this.#options.error(`error forwarding port ${remote} for connection on ${localPort}: ${failure.message} [${failure.code}]`);
        }
        socket.destroy();
      },
    );
  }
}
