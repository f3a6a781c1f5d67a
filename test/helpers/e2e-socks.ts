/**
 * SOCKS from the client side for the end-to-end tests: the `socks` npm
 * client (what Node programs use), the reply code it reports, a raw SOCKS5
 * exchange that reads the reply byte itself, and a byte exchange over an
 * established socket.
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

/** Connects through the proxy with the `socks` client (type 5, or 4 → SOCKS4a for a name). */
export async function socksConnect(proxyPort: number, host: string, port: number, type: 4 | 5 = 5): Promise<Socket> {
  const { socket } = await SocksClient.createConnection({
    proxy: { host: '127.0.0.1', port: proxyPort, type },
    command: 'connect',
    destination: { host, port },
    timeout: 10_000,
  });
  return socket;
}

/**
 * The SOCKS5 reply the `socks` client reports for a refused CONNECT (its
 * error reads `Socks5 proxy rejected connection - ConnectionRefused`);
 * 0 when the connection was granted.
 */
export async function socksClientReply(proxyPort: number, host: string, port: number): Promise<number> {
  try {
    const socket = await socksConnect(proxyPort, host, port, 5);
    socket.destroy();
    return 0;
  } catch (err) {
    const message = (err as Error).message;
    const m = /Socks5 proxy rejected connection - (\w+)/.exec(message);
    const code = m?.[1] !== undefined ? SOCKS5_REPLY_BY_NAME[m[1]] : undefined;
    if (code === undefined) throw new Error(`the socks client failed without a SOCKS5 reply: ${message}`, { cause: err });
    return code;
  }
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

/** Writes `data` and reads back as many bytes. */
export async function exchange(socket: Socket, data: Buffer): Promise<Buffer> {
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
