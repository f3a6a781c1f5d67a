/**
 * A client SpdySession and a server SpdySession on the two ends of one real
 * loopback TCP connection, with a frame tap on each socket.
 */
import { once } from 'node:events';
import type * as net from 'node:net';
import type { KubesocksError } from '../../src/errors.js';
import { SpdySession, type SpdySessionOptions } from '../../src/spdy/session.js';
import type { SpdyStream } from '../../src/spdy/stream.js';
import { listen, connect, tcpPair } from './spdy-net.js';
import { FrameTap, RawPeer } from './spdy-wire.js';

export interface SessionPair {
  client: SpdySession;
  server: SpdySession;
  clientSocket: net.Socket;
  serverSocket: net.Socket;
  /** Frames the client sent (tapped on the server's socket). */
  fromClient: FrameTap;
  /** Frames the server sent (tapped on the client's socket). */
  fromServer: FrameTap;
  close(): Promise<void>;
}

type Options = Omit<SpdySessionOptions, 'role'>;

export async function sessionPair(options: { client?: Options; server?: Options; tap?: boolean } = {}): Promise<SessionPair> {
  const pair = await tcpPair();
  const tap = options.tap !== false;
  const fromClient = new FrameTap(tap ? pair.server : pairStub());
  const fromServer = new FrameTap(tap ? pair.client : pairStub());
  const client = new SpdySession(pair.client, { role: 'client', ...options.client });
  const server = new SpdySession(pair.server, { role: 'server', ...options.server });
  // Streams still open when a test ends are destroyed with the session's
  // error; give every stream a no-op 'error' listener so teardown is quiet
  // (tests that expect an error still see it through their own listener).
  const openStream = client.openStream.bind(client);
  client.openStream = (headers, opts) => {
    const stream = openStream(headers, opts);
    stream.on('error', () => {});
    return stream;
  };
  server.on('stream', (stream) => stream.on('error', () => {}));
  return {
    client,
    server,
    clientSocket: pair.client,
    serverSocket: pair.server,
    fromClient,
    fromServer,
    close: async () => {
      client.close();
      server.close();
      await pair.close();
    },
  };
}

/** A do-nothing socket stand-in for an untapped side. */
function pairStub(): net.Socket {
  return { on: () => undefined } as unknown as net.Socket;
}

/** Resolves with the next stream the session accepts. */
export async function nextStream(session: SpdySession): Promise<SpdyStream> {
  const [stream] = (await once(session, 'stream')) as [SpdyStream];
  return stream;
}

/** Resolves with the error the session closed with. */
export async function sessionClosed(session: SpdySession): Promise<KubesocksError | undefined> {
  if (session.closed) throw new Error('already closed');
  const [error] = (await once(session, 'close')) as [KubesocksError | undefined];
  return error;
}

/** A SpdySession (in `role`) facing a RawPeer over loopback TCP. */
export async function sessionWithRawPeer(role: 'client' | 'server', options: Options = {}): Promise<{ session: SpdySession; peer: RawPeer; close(): Promise<void> }> {
  let accepted!: (socket: net.Socket) => void;
  const acceptedSocket = new Promise<net.Socket>((resolve) => (accepted = resolve));
  const listener = await listen((socket) => accepted(socket));
  const dialed = await connect(listener.port);
  const serverSide = await acceptedSocket;
  const [ours, theirs] = role === 'client' ? [dialed, serverSide] : [serverSide, dialed];
  const peer = new RawPeer(theirs);
  const session = new SpdySession(ours, { role, ...options });
  return {
    session,
    peer,
    close: async () => {
      session.close();
      peer.destroy();
      await listener.close();
    },
  };
}

export { tcpPair };
