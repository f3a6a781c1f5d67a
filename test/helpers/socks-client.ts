/**
 * SOCKS from the client side, for every test that needs it: the `socks`
 * npm client (what Node programs use), the reply it reports, a raw SOCKS5
 * handshake that reads the reply byte itself, and an echo round trip over
 * an established socket.
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { SocksClient } from 'socks';

/** RFC 1928 §6 reply codes by the names the `socks` client gives them in its errors. */
const SOCKS5_REPLY_BY_NAME: Record<string, number> = {
  Granted: 0,
  Failure: 1,
  NotAllowed: 2,
  NetworkUnreachable: 3,
  HostUnreachable: 4,
  ConnectionRefused: 5,
  TTLExpired: 6,
  CommandNotSupported: 7,
  AddressNotSupported: 8,
};

/**
 * A CONNECT through the proxy with the `socks` npm client (type 5 with remote
 * name resolution, like socks5h; type 4 → SOCKS4a for a name). The socket
 * comes back flowing: the client calls resume() on it in a setImmediate after
 * the handshake (socks 2.8, socksclient.js), so this waits for that first —
 * a pause() by the caller would otherwise be undone, and bytes would be
 * dropped with no listener.
 */
export async function socksConnect(proxyPort: number, host: string, port: number, options: { type?: 4 | 5; timeoutMs?: number } = {}): Promise<Socket> {
  const { socket } = await SocksClient.createConnection({
    proxy: { host: '127.0.0.1', port: proxyPort, type: options.type ?? 5 },
    command: 'connect',
    destination: { host, port },
    timeout: options.timeoutMs ?? 10_000,
  });
  socket.setNoDelay(true);
  await new Promise((resolve) => setImmediate(resolve));
  return socket;
}

/** A SOCKS5 CONNECT with the `socks` client (what the fault tests call it). */
export function socks5(proxyPort: number, host: string, port: number, timeoutMs = 10_000): Promise<Socket> {
  return socksConnect(proxyPort, host, port, { type: 5, timeoutMs });
}

/**
 * The SOCKS5 reply name the `socks` client reports for a refused CONNECT
 * (its error reads `Socks5 proxy rejected connection - ConnectionRefused`);
 * `Granted` when the connection was granted.
 */
export async function socks5Reply(proxyPort: number, host: string, port: number): Promise<string> {
  try {
    const socket = await socks5(proxyPort, host, port);
    socket.destroy();
    return 'Granted';
  } catch (err) {
    const m = /Socks5 proxy rejected connection - (\w+)/.exec((err as Error).message);
    if (!m?.[1]) throw err;
    return m[1];
  }
}

/** The same as a number: the RFC 1928 REP byte (0 when granted). */
export async function socksClientReply(proxyPort: number, host: string, port: number): Promise<number> {
  const name = await socks5Reply(proxyPort, host, port);
  const code = SOCKS5_REPLY_BY_NAME[name];
  if (code === undefined) throw new Error(`the socks client reported an unknown SOCKS5 reply ${name}`);
  return code;
}

/** Reads exactly `n` bytes (or rejects when the socket ends first); the socket is left paused. */
export async function readBytes(socket: Socket, n: number, timeoutMs = 10_000): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let have = 0;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`read ${have} of ${n} bytes within ${timeoutMs} ms`)), timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', fail);
      // Paused between reads, so no byte is emitted while nobody listens.
      socket.pause();
    };
    function fail(err: Error): void {
      cleanup();
      reject(err);
    }
    function onEnd(): void {
      fail(new Error(`the socket ended after ${have} of ${n} bytes: ${Buffer.concat(chunks).toString('hex')}`));
    }
    function onData(chunk: Buffer): void {
      chunks.push(chunk);
      have += chunk.length;
      if (have < n) return;
      cleanup();
      const all = Buffer.concat(chunks);
      if (all.length > n) socket.unshift(all.subarray(n));
      resolve(all.subarray(0, n));
    }
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', fail);
    socket.resume();
  });
}

/** Writes `data` and reads back as many bytes (an echo's round trip). */
export async function roundTrip(socket: Socket, data: Buffer): Promise<Buffer> {
  const reply = readBytes(socket, data.length);
  socket.write(data);
  return reply;
}

/**
 * A SOCKS5 CONNECT by domain name, byte by byte (RFC 1928): the REP byte of
 * the proxy's reply, and the socket, still open when the reply was 0.
 */
export async function rawSocks5Connect(proxyPort: number, host: string, port: number): Promise<{ rep: number; socket: Socket }> {
  const socket = connect(proxyPort, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(Buffer.from([0x05, 0x01, 0x00]));
  const method = await readBytes(socket, 2);
  if (method[0] !== 0x05 || method[1] !== 0x00) throw new Error(`unexpected method selection ${method.toString('hex')}`);
  const name = Buffer.from(host, 'ascii');
  const portBytes = Buffer.alloc(2);
  portBytes.writeUInt16BE(port);
  socket.write(Buffer.concat([Buffer.from([0x05, 0x01, 0x00, 0x03, name.length]), name, portBytes]));
  const head = await readBytes(socket, 4);
  const rep = head[1] ?? -1;
  const atyp = head[3];
  const addrLen = atyp === 0x01 ? 4 : atyp === 0x04 ? 16 : atyp === 0x03 ? ((await readBytes(socket, 1))[0] ?? 0) : 0;
  await readBytes(socket, addrLen + 2);
  if (rep !== 0) socket.destroy();
  return { rep, socket };
}
