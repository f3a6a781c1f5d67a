/**
 * How a TCP connection really ended for the client: a FIN (clean end) or an
 * RST (reset) — as the kernel saw it, not only as Node reports it.
 *
 * Node's libuv (1.46 in Node 20; fixed upstream by libuv/libuv#4997) reports
 * an RST that arrives while the client still has unread bytes as a clean
 * end: the reset makes the socket hang up (POLLHUP), and a short last read
 * with POLLHUP is taken for EOF without reading on to the ECONNRESET behind
 * it (libuv/libuv#2319). The client gets 'end', where curl, browsers, Go or
 * Python programs get "connection reset". A reset that finds the client's
 * receive queue empty still arrives as 'error' ECONNRESET.
 *
 * So on 'end', an empty write asks the kernel: it fails with ECONNRESET
 * after a reset, succeeds (sending nothing) after a FIN, and fails with
 * EPIPE after a FIN that a reset followed. That tells the two apart without
 * a packet capture. (kubesocks asks the same of its own sockets:
 * src/net/end-or-reset.ts; this helper is written apart so that the tests
 * do not take the code under test's word.) The socket is made half-open
 * for it: Node's default would turn the write into a local EPIPE.
 */
import type { Socket } from 'node:net';

/** `reset`: an RST and no FIN before it; `fin`: a FIN (perhaps reset later); `close`: closed with neither seen. */
export type WireEnding = 'reset' | 'fin' | 'close' | `error ${string}`;

const PROBE = Buffer.alloc(0);

function fromError(error: Error): WireEnding {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ECONNRESET') return 'reset';
  if (code === 'EPIPE') return 'fin';
  return `error ${code ?? error.message}`;
}

/** Resolves with how `socket` ends; call before it can end. Afterwards the socket is destroyed. */
export function wireEnding(socket: Socket): Promise<WireEnding> {
  socket.allowHalfOpen = true;
  return new Promise((resolve) => {
    let settled = false;
    const settle = (ending: WireEnding): void => {
      if (settled) return;
      settled = true;
      resolve(ending);
    };
    socket.once('error', (error) => settle(fromError(error)));
    socket.once('end', () => {
      // A socket that half-closed itself cannot write the probe: its 'end' counts as a FIN
      // (so such a test must make sure nothing is left unread when the reset can come).
      if (socket.writableEnded) {
        settle('fin');
        socket.destroy();
        return;
      }
      socket.write(PROBE, (error) => {
        settle(error ? fromError(error) : 'fin');
        socket.destroy();
      });
    });
    socket.once('close', () => setImmediate(() => settle('close')));
  });
}
