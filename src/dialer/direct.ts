/** Connections to destinations outside the cluster, made straight from this machine. */
import * as net from 'node:net';
import { KubesocksError } from '../errors.js';
import { formatHostPort } from '../net/address.js';

export function dialDirect(host: string, port: number, timeoutMs: number, signal?: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, signal, allowHalfOpen: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new KubesocksError('TIMEOUT', `direct connection to ${formatHostPort(host, port)} timed out after ${timeoutMs / 1000} s`));
    }, timeoutMs);
    timer.unref();
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const what = `direct connection to ${formatHostPort(host, port)}`;
      if (error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN') {
        reject(new KubesocksError('NOT_FOUND', `${what}: the name does not resolve outside the cluster (${error.code})`, { cause: error }));
      } else if (error.code === 'EMFILE' || error.code === 'ENFILE') {
        const scope = error.code === 'EMFILE' ? 'this process has' : 'the system has';
        reject(new KubesocksError('DIRECT_FAILED', `${what} failed: ${scope} too many open files (${error.code}); raise the limit before starting kubesocks (ulimit -n 65536)`, { cause: error }));
      } else if (error.code === 'ETIMEDOUT') {
        reject(new KubesocksError('TIMEOUT', `${what} timed out`, { cause: error }));
      } else {
        reject(new KubesocksError('DIRECT_FAILED', `${what} failed: ${error.code ?? error.message}`, { cause: error }));
      }
    });
  });
}
