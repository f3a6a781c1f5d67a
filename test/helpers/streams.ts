/** Small exchanges over any Duplex (a pair, a dialer socket, a proxied socket). */
import type { Duplex } from 'node:stream';

/** Writes `payload`, half-closes, and collects everything up to the end. */
export function exchangeToEnd(stream: Duplex, payload: Buffer | string, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error(`no end within ${timeoutMs} ms`)), timeoutMs);
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    stream.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    stream.end(payload);
  });
}
