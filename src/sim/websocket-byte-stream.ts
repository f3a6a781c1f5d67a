/**
 * The API server's end of a port-forward WebSocket tunnel as a byte stream,
 * over ws (a WebSocket implementation independent of the client's in
 * src/net/websocket-stream.ts, as gorilla/websocket is on a real API server),
 * as its TunnelingConnection("server") reads and writes one
 * (apiserver util/proxy/streamtunnel.go):
 *
 * - every write is one binary message (a corked batch of writes is one message);
 * - binary messages read as one continuous byte stream;
 * - a text message is a protocol error;
 * - a close frame with code 1000 reads as EOF; any other close, or the TCP
 *   connection dropping, is an error;
 * - ending the stream sends close 1000.
 *
 * Backpressure both ways, after ws's own lib/stream.js: a full read buffer
 * pauses the WebSocket, and a write completes only when ws has handed the
 * frame to the socket.
 */
import { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { KubesocksError } from '../errors.js';

/** RFC 6455 7.4.1: normal closure. */
const CLOSE_NORMAL = 1000;

export class WsByteStream extends Duplex {
  readonly #ws: WebSocket;
  #ended = false;

  constructor(ws: WebSocket) {
    // No half-close over WebSockets: ending either side closes both.
    super({ allowHalfOpen: false });
    this.#ws = ws;
    ws.on('message', this.#onMessage);
    ws.on('close', this.#onClose);
    ws.on('error', this.#onError);
  }

  /** The subprotocol the server selected. */
  get protocol(): string {
    return this.#ws.protocol;
  }

  readonly #onMessage = (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void => {
    if (!isBinary) {
      this.destroy(new KubesocksError('PROTOCOL_ERROR', 'the peer sent a text message in the port-forward tunnel; only binary messages carry it'));
      return;
    }
    // binaryType is 'nodebuffer' (ws's default): data is one Buffer.
    if (!this.push(data as Buffer)) this.#ws.pause();
  };

  readonly #onClose = (code: number, reason: Buffer): void => {
    if (code === CLOSE_NORMAL) {
      this.#ended = true;
      this.push(null);
      return;
    }
    const why = code === 1006 ? 'the connection dropped without a close frame' : `close code ${code}${reason.length > 0 ? ` (${reason.toString('utf8')})` : ''}`;
    this.destroy(new KubesocksError('CONNECTION_LOST', `the port-forward WebSocket closed abnormally: ${why}`));
  };

  readonly #onError = (error: Error): void => {
    this.destroy(new KubesocksError('CONNECTION_LOST', `port-forward WebSocket error: ${error.message}`, { cause: error }));
  };

  override _read(): void {
    this.#ws.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#send(chunk, callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    // A SPDY frame header and its payload arrive as separate corked writes:
    // one message for the batch saves a frame header and a mask per write.
    this.#send(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)), callback);
  }

  #send(data: Buffer, callback: (error?: Error | null) => void): void {
    if (this.#ws.readyState !== this.#ws.OPEN) {
      callback(new KubesocksError('CONNECTION_LOST', 'the port-forward WebSocket is closed'));
      return;
    }
    this.#ws.send(data, { binary: true, compress: false, fin: true }, (error) => {
      callback(error ? new KubesocksError('CONNECTION_LOST', `port-forward WebSocket write failed: ${error.message}`, { cause: error }) : null);
    });
  }

  override _final(callback: (error?: Error | null) => void): void {
    // The kubelet side cannot see a half-close; ending is closing (client-go's Close sends 1000).
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.close(CLOSE_NORMAL);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#ws.off('message', this.#onMessage);
    this.#ws.off('close', this.#onClose);
    // Errors after teardown (a write racing the close) are of no interest any more.
    this.#ws.off('error', this.#onError);
    this.#ws.on('error', () => {});
    const state = this.#ws.readyState;
    if (state === this.#ws.OPEN && !error && !this.#ended) this.#ws.close(CLOSE_NORMAL);
    else if (state !== this.#ws.CLOSED) this.#ws.terminate();
    callback(error);
  }

}
