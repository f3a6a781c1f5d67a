/**
 * Which accepted sockets the proxy reads. Two things must hold at once:
 *
 * - a burst of real clients is never dropped: 5,000 SOCKS5 connects at once
 *   all get served, however many handshakes are in flight;
 * - sockets that connect and never send a byte cannot lock real clients out.
 *
 * The policy: at most `maxHandshakes` sockets are read at a time (a socket
 * being read holds a parser, a deadline timer and buffers). A socket accepted
 * beyond that is parked: not read at all (the server accepts with
 * `pauseOnConnect`), so it costs a file descriptor and one small object, and
 * its bytes wait in the kernel. Parked sockets are admitted first come, first
 * served as handshakes finish. When sockets are parked and the handshake
 * slots are full, the admitted sockets that have sent nothing for
 * `silentGraceMs` since they started being read are closed, oldest first, to
 * make room: a real client's greeting is already waiting in the kernel when
 * its socket is admitted, so it is read within one turn of the event loop.
 * The check runs in `setImmediate`, after the event loop's poll phase, so
 * bytes that arrived meanwhile are seen before a socket is judged silent
 * (https://nodejs.org/en/learn/asynchronous-work/event-loop-timers-and-nexttick).
 *
 * A socket that sent part of a handshake is never evicted; it has the
 * handshake deadline. Nothing here destroys a socket that has not had the
 * chance to speak.
 */
import type { Socket } from 'node:net';

export interface AdmissionOptions {
  /** Sockets read at once (handshakes in flight). */
  maxHandshakes: number;
  /** How long an admitted socket may stay silent before it can be evicted to make room. */
  silentGraceMs: number;
  /** Starts reading a socket. It is silent until `heard()`, and holds a slot until `release()`. */
  admit(socket: Socket, ticket: AdmissionTicket): void;
  /** Closes a silent socket to make room (the caller reports it). */
  evict(ticket: AdmissionTicket): void;
}

/** One admitted socket's place in the handshake slots. */
export class AdmissionTicket {
  readonly socket: Socket;
  readonly admittedAt = Date.now();
  /** The socket sent at least one byte (it can no longer be evicted). */
  heard = false;
  released = false;
  /** The eviction pass that first found it silent past the grace time. */
  suspectedInPass = -1;

  constructor(socket: Socket) {
    this.socket = socket;
  }
}

export class Admission {
  readonly #options: AdmissionOptions;
  /** Admitted tickets that have not released their slot. */
  #inFlight = 0;
  /** Admitted and silent, oldest first (a Set keeps insertion order). */
  readonly #silent = new Set<AdmissionTicket>();
  /** Accepted, not read yet, first come first served. */
  #parked: Socket[] = [];
  #parkedHead = 0;
  #checkScheduled = false;
  #pass = 0;
  #inPass = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: AdmissionOptions) {
    this.#options = options;
  }

  /** Handshakes being read now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Sockets accepted and waiting to be read. */
  get waiting(): number {
    return this.#parked.length - this.#parkedHead;
  }

  /** A newly accepted (paused) socket. */
  offer(socket: Socket): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    if (this.#inFlight < this.#options.maxHandshakes && this.waiting === 0) {
      this.#admit(socket);
      return;
    }
    // An error on a socket nobody reads yet (a reset) must not crash the process.
    socket.on('error', noop);
    this.#parked.push(socket);
    this.#scheduleCheck();
  }

  /** The socket sent its first byte: it is no longer a candidate for eviction. */
  heard(ticket: AdmissionTicket): void {
    if (ticket.heard) return;
    ticket.heard = true;
    this.#silent.delete(ticket);
  }

  /** The socket finished its handshake or closed: its slot goes to the next parked socket. Idempotent. */
  release(ticket: AdmissionTicket): void {
    if (ticket.released) return;
    ticket.released = true;
    this.#silent.delete(ticket);
    this.#inFlight--;
    this.#admitParked();
    if (this.waiting > 0 && !this.#inPass) this.#scheduleCheck();
  }

  /**
   * Takes a slot for a socket whose handshake already ended but which must
   * still count (an HTTP answer to wrong credentials being delayed, see
   * wrong-credentials.ts). It may take the count past `maxHandshakes`:
   * parked sockets then wait longer, nothing is closed. Returns the
   * release, which is idempotent.
   */
  hold(): () => void {
    this.#inFlight++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#inFlight--;
      this.#admitParked();
      if (this.waiting > 0 && !this.#inPass) this.#scheduleCheck();
    };
  }

  /** Destroys every parked socket and stops admitting. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (let i = this.#parkedHead; i < this.#parked.length; i++) this.#parked[i]?.destroy();
    this.#parked = [];
    this.#parkedHead = 0;
  }

  #admit(socket: Socket): void {
    socket.off('error', noop);
    const ticket = new AdmissionTicket(socket);
    this.#inFlight++;
    this.#silent.add(ticket);
    this.#options.admit(socket, ticket);
  }

  #admitParked(): void {
    while (!this.#closed && this.#inFlight < this.#options.maxHandshakes && this.waiting > 0) {
      const socket = this.#parked[this.#parkedHead];
      this.#parked[this.#parkedHead++] = undefined as unknown as Socket;
      if (this.#parkedHead > 1024 && this.#parkedHead * 2 > this.#parked.length) {
        this.#parked = this.#parked.slice(this.#parkedHead);
        this.#parkedHead = 0;
      }
      if (!socket || socket.destroyed) continue;
      this.#admit(socket);
    }
  }

  #scheduleCheck(): void {
    if (this.#checkScheduled || this.#closed) return;
    this.#checkScheduled = true;
    setImmediate(() => {
      this.#checkScheduled = false;
      this.#inPass = true;
      try {
        this.#evictSilent();
      } finally {
        this.#inPass = false;
      }
    });
  }

  /** Makes room for parked sockets by closing admitted ones that stayed silent past the grace time. */
  #evictSilent(): void {
    if (this.#closed) return;
    const now = Date.now();
    const pass = ++this.#pass;
    const { silentGraceMs } = this.#options;
    let needed = this.waiting;
    let suspects = 0;
    for (const ticket of this.#silent) {
      if (needed <= 0) break;
      if (now - ticket.admittedAt < silentGraceMs) break;
      // Judged silent only by a later pass: a whole poll phase lies between,
      // so a greeting written while this process was busy has been read.
      if (ticket.suspectedInPass < 0 || ticket.suspectedInPass === pass) {
        ticket.suspectedInPass = pass;
        suspects++;
        needed--;
        continue;
      }
      this.#silent.delete(ticket);
      this.#options.evict(ticket);
      // evict() closes the socket; its close releases the slot. Make sure the count moves now.
      this.release(ticket);
      needed--;
    }
    this.#admitParked();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.waiting === 0) return;
    if (suspects > 0) {
      this.#scheduleCheck();
      return;
    }
    const oldest = this.#silent.values().next().value as AdmissionTicket | undefined;
    if (!oldest) return; // every slot is a client mid-handshake: slots free as they finish or time out
    const delay = Math.max(1, oldest.admittedAt + silentGraceMs - now);
    this.#timer = setTimeout(() => this.#scheduleCheck(), delay);
    this.#timer.unref();
  }
}

function noop(): void {}
