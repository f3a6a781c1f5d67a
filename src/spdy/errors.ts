import { KubesocksError } from '../errors.js';
import { rstCodeName } from './protocol.js';

/** The peer broke SPDY framing: fatal for the whole connection, as in spdystream. */
export class SpdyProtocolError extends KubesocksError {
  constructor(message: string) {
    super('PROTOCOL_ERROR', `SPDY protocol error: ${message}`);
    this.name = 'SpdyProtocolError';
  }
}

/** The peer sent RST_STREAM for one stream. */
export class StreamResetError extends KubesocksError {
  readonly status: number;

  constructor(status: number, streamId: number) {
    super('STREAM_RESET', `stream ${streamId} was reset by the peer (${rstCodeName(status)})`);
    this.name = 'StreamResetError';
    this.status = status;
  }
}
