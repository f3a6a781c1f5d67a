/**
 * One proxied TCP connection carried as a port-forward stream pair: an
 * `error` stream (which we half-close at once; the kubelet writes there why
 * the pod side failed) and a `data` stream (the bytes). Exposed as a Duplex
 * with backpressure and half-close both ways.
 *
 * A message on the error stream fails only this pair, never the connection
 * (client-go closes the whole connection there: kubernetes#111825).
 */
import { Duplex } from 'node:stream';
import { KubesocksError, type ErrorCode } from '../errors.js';
import { StreamResetError } from '../spdy/errors.js';
import type { SpdyStream } from '../spdy/stream.js';

export interface PairInfo {
  namespace: string;
  pod: string;
  port: number;
  requestId: number;
}

/** How long after the data stream's SYN_REPLY a silent pair counts as connected. */
export const DEFAULT_CONFIRM_MS = 20;

const MAX_ERROR_TEXT = 16 * 1024;

/** How long the local side may stay open after the pod side ended. */
export const HALF_OPEN_GRACE_MS = 5000;

/** After the data stream finished, how long the error stream may take to finish too (its text decides the outcome). */
export const ERROR_STREAM_WAIT_MS = 2000;

/** After the first error text, how long the streams may take to end before the pair fails anyway. */
export const ERROR_TEXT_WAIT_MS = 250;

/** Turns the kubelet's error-stream text into a stable code. */
export function classifyKubeletError(text: string): ErrorCode {
  if (/connection refused|failed to connect to localhost/i.test(text)) return 'POD_REFUSED';
  if (/network namespace for sandbox .* is closed|sandbox .* not found|container not running|not found/i.test(text)) return 'POD_GONE';
  if (/timed out waiting for streams/i.test(text)) return 'TIMEOUT';
  return 'PORTFORWARD_FAILED';
}

/**
 * The error stream carries plain text from today's runtimes; some kubelet
 * versions wrap it as JSON `{"closeConnection":…,"message":…}`. Either way
 * the message is what the user needs.
 */
export function errorStreamMessage(raw: string): string {
  if (raw.startsWith('{')) {
    try {
      const parsed = JSON.parse(raw) as { message?: unknown };
      if (typeof parsed.message === 'string' && parsed.message) return parsed.message;
    } catch {
      // not JSON after all
    }
  }
  return raw;
}

export class PortForwardStream extends Duplex {
  readonly info: PairInfo;
  readonly #data: SpdyStream;
  readonly #error: SpdyStream;
  #errorText = '';
  #bytesIn = 0;
  #bytesOut = 0;
  readonly #confirmed: Promise<void>;
  #confirm!: () => void;
  #refuse!: (error: KubesocksError) => void;
  #settled = false;
  #confirmTimer: NodeJS.Timeout | undefined;
  #halfOpenTimer: NodeJS.Timeout | undefined;
  #textTimer: NodeJS.Timeout | undefined;
  #errorWaitTimer: NodeJS.Timeout | undefined;
  /** The error stream ended or closed: its text is complete. */
  #errorDone = false;
  /** How the data stream finished (FIN, or its error), once it did. */
  #dataOutcome: 'end' | Error | undefined;
  /**
   * Why the error stream went away without finishing (the connection lost,
   * a reset): then the pair's verdict was never given, and a data stream
   * that ended is not known to be complete.
   */
  #errorStreamFailure: Error | undefined;
  #decided = false;

  constructor(errorStream: SpdyStream, dataStream: SpdyStream, info: PairInfo, confirmMs = DEFAULT_CONFIRM_MS) {
    super({ allowHalfOpen: true });
    this.info = info;
    this.#error = errorStream;
    this.#data = dataStream;
    this.#confirmed = new Promise<void>((resolve, reject) => {
      // Called for every chunk that arrives: settled once, cheap after.
      this.#confirm = () => {
        // Text on the error stream means the pod side failed: nothing confirms that.
        if (this.#settled || this.#errorText !== '') return;
        this.#settled = true;
        resolve();
      };
      this.#refuse = (error) => {
        if (this.#settled) return;
        this.#settled = true;
        reject(error);
      };
    });
    this.#confirmed.catch(() => {});

    errorStream.on('data', (chunk: Buffer) => {
      const first = this.#errorText === '';
      if (this.#errorText.length < MAX_ERROR_TEXT) this.#errorText += chunk.toString('utf8');
      // Text there means this pair failed, whatever else arrives or not: a
      // runtime that never closes the error stream is not waited for long.
      if (first && this.#errorText !== '') {
        this.#textTimer = setTimeout(() => this.#decide(true), ERROR_TEXT_WAIT_MS);
        this.#textTimer.unref();
      }
    });
    // Ends (FIN) or closes (RST after a failure): either way the text is complete.
    errorStream.once('close', () => {
      this.#errorDone = true;
      this.#decide(false);
    });
    errorStream.on('error', (error: Error) => {
      this.#errorStreamFailure ??= error;
    });
    errorStream.end(); // client-go half-closes the error stream at once

    dataStream.on('data', (chunk: Buffer) => {
      this.#bytesIn += chunk.length;
      this.#confirm();
      if (!this.push(chunk)) dataStream.pause();
    });
    // The data stream's end or reset is only half the story: runtimes write
    // their failure text, then end the streams in their own order (kubelet
    // 1.32: RST both; containerd: FIN data, then FIN error — shared/runtime.md).
    // Its outcome is decided once the error stream is done as well.
    dataStream.once('end', () => {
      this.#dataOutcome ??= 'end';
      this.#awaitErrorStream();
    });
    dataStream.once('reply', () => {
      // The kubelet replies before it dials the pod; a refusal follows within
      // the dial time. Silence for confirmMs after the reply means connected.
      this.#confirmTimer = setTimeout(() => this.#confirm(), confirmMs);
      this.#confirmTimer.unref();
    });
    dataStream.once('error', (error) => {
      this.#dataOutcome ??= error;
      this.#awaitErrorStream();
    });
    dataStream.once('close', () => {
      if (!this.destroyed && this.readableEnded && this.writableFinished) this.destroy();
    });
  }

  /** Whether the kubelet answered the data stream's SYN_STREAM (it does so before dialling the pod). */
  get acknowledged(): boolean {
    return this.#data.replyHeaders !== undefined;
  }

  get bytesIn(): number {
    return this.#bytesIn;
  }

  get bytesOut(): number {
    return this.#bytesOut;
  }

  /**
   * Resolves once the pod side is known to have accepted the connection (a
   * byte arrived, or confirmMs passed after the kubelet's reply without an
   * error); rejects with the failure otherwise.
   */
  confirmed(): Promise<void> {
    return this.#confirmed;
  }

  override _read(): void {
    this.#data.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#bytesOut += chunk.length;
    this.#data.write(chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#data.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.#confirmTimer);
    clearTimeout(this.#halfOpenTimer);
    clearTimeout(this.#textTimer);
    clearTimeout(this.#errorWaitTimer);
    // (Only while still unsettled: an error costs a stack trace, and almost every pair was confirmed long ago.)
    if (!this.#settled) this.#refuse(error instanceof KubesocksError ? error : new KubesocksError('CLOSED', 'the stream was closed'));
    // client-go resets the data stream when it is done with it; a finished
    // stream (FIN both ways) needs nothing more.
    if (!this.#data.destroyed) this.#data.destroy();
    if (!this.#error.destroyed) this.#error.destroy();
    callback(error);
  }

  /** The data stream is done; the error stream gets ERROR_STREAM_WAIT_MS to be done too. */
  #awaitErrorStream(): void {
    if (this.#errorDone) return this.#decide(false);
    this.#errorWaitTimer ??= setTimeout(() => this.#decide(true), ERROR_STREAM_WAIT_MS);
    this.#errorWaitTimer.unref();
  }

  /**
   * The pair's outcome, the same whatever order the text, the FINs and the
   * RSTs came in: text on the error stream → failed (before the first byte
   * that is a refusal, after it the client is reset); else the data stream's
   * error; else its clean end. Waits for both streams unless `force`
   * (a timer ran out on a peer that left one open).
   */
  #decide(force: boolean): void {
    if (this.#decided || this.destroyed) return;
    const text = this.#errorText.trim();
    const dataOutcome = this.#dataOutcome;
    if (!force && !(this.#errorDone && (dataOutcome !== undefined || text))) return;
    if (text) {
      this.#decided = true;
      return this.#fail(this.#kubeletError(text));
    }
    if (dataOutcome === undefined) return; // error stream closed without text: the data stream goes on
    this.#decided = true;
    if (dataOutcome !== 'end') return this.#onDataError(dataOutcome);
    // The data ended, but the error stream was cut before the runtime could
    // say whether the copy failed (its text may have been in the bytes the
    // lost connection never delivered): a reset, never a clean end.
    if (this.#errorStreamFailure) return this.#onDataError(this.#errorStreamFailure);
    this.#confirm();
    this.push(null);
    // The pod side is closed for good (the runtime does not keep half-open
    // connections), so a local side that never ends would hold the pair
    // forever: after a grace period it is closed, as client-go resets it.
    // The grace starts once the reader has taken the last byte, not when the
    // pod's end arrived: a reader busy elsewhere for longer must still get
    // what waits in this pair's buffer.
    this.once('end', () => {
      if (this.writableFinished || this.destroyed) return;
      this.#halfOpenTimer = setTimeout(() => this.destroy(), HALF_OPEN_GRACE_MS);
      this.#halfOpenTimer.unref();
    });
  }

  #onDataError(error: Error): void {
    if (error instanceof StreamResetError) {
      return this.#fail(new KubesocksError('STREAM_RESET', `${this.#where()}: ${error.message}`, { cause: error }));
    }
    // Name the pod: with many sockets open, "the connection closed" alone does not say which broke.
    const code = error instanceof KubesocksError ? error.code : 'CONNECTION_LOST';
    this.#fail(new KubesocksError(code, `${this.#where()}: ${error.message}`, { cause: error }));
  }

  #kubeletError(raw: string): KubesocksError {
    const text = errorStreamMessage(raw);
    return new KubesocksError(classifyKubeletError(text), `${this.#where()}: ${text}`);
  }

  #fail(error: KubesocksError): void {
    this.#refuse(error);
    this.destroy(error);
  }

  #where(): string {
    return `${this.info.namespace}/${this.info.pod} port ${this.info.port}`;
  }
}
