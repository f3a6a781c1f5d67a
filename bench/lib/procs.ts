/**
 * Child processes of the benchmark and what /proc says about them.
 *
 * Every child is registered on spawn and killed by killAll() (SIGTERM, then
 * SIGKILL after a grace period); an 'exit' hook SIGKILLs whatever is left if
 * the runner dies some other way. CPU is utime + stime from /proc/PID/stat;
 * memory is VmRSS (now) and VmHWM (peak) from /proc/PID/status.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export interface ProcSample {
  /** User + system CPU seconds since the process started. */
  cpuSec: number;
  /** Resident set now (bytes). */
  rss: number;
  /** Peak resident set (bytes). */
  hwm: number;
}

/** CPU and memory of one process, or undefined if it is gone. */
export function sample(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuSec = (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const kib = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { cpuSec, rss: kib('VmRSS'), hwm: kib('VmHWM') };
  } catch {
    return undefined;
  }
}

/** Tracks peak RSS of a set of processes by polling (VmHWM covers one process; this covers "at the same time"). */
export class RssPoller {
  #timer: NodeJS.Timeout | undefined;
  peakSum = 0;

  constructor(private readonly pids: () => number[], intervalMs = 50) {
    this.poll();
    this.#timer = setInterval(() => this.poll(), intervalMs);
    this.#timer.unref();
  }

  poll(): void {
    let sum = 0;
    for (const pid of this.pids()) sum += sample(pid)?.rss ?? 0;
    if (sum > this.peakSum) this.peakSum = sum;
  }

  stop(): number {
    clearInterval(this.#timer);
    this.poll();
    return this.peakSum;
  }
}

export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Everything written to stdout and stderr so far (bounded). */
  output(): string;
  /** Resolves with the first match of `pattern` in stdout+stderr; rejects on exit or timeout. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
  readonly exited: boolean;
}

const children = new Set<Child>();
const MAX_OUTPUT = 256 * 1024;

/**
 * `stopGraceMs`: how long stop() (and killAll) waits after SIGTERM before
 * SIGKILL — longer for a simulator with real sandboxes, whose removal must
 * not be cut short.
 */
export function start(name: string, command: string, args: string[], options: SpawnOptions & { stopGraceMs?: number } = {}): Child {
  const { stopGraceMs = 3000, ...spawnOptions } = options;
  const proc = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...spawnOptions });
  if (proc.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  let out = '';
  let exited = false;
  const watchers = new Set<() => void>();
  const append = (chunk: Buffer): void => {
    if (out.length < MAX_OUTPUT) out += chunk.toString('utf8');
    for (const w of watchers) w();
  };
  proc.stdout?.on('data', append);
  proc.stderr?.on('data', append);
  proc.stdin?.on('error', () => {});
  const exitedPromise = new Promise<void>((resolve) => {
    proc.once('exit', () => {
      exited = true;
      children.delete(child);
      for (const w of watchers) w();
      resolve();
    });
    proc.once('error', () => {
      exited = true;
      children.delete(child);
      resolve();
    });
  });
  const child: Child = {
    name,
    proc,
    pid: proc.pid,
    output: () => out,
    get exited() {
      return exited;
    },
    waitFor(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = pattern.exec(out);
          if (m) {
            finish();
            resolve(m);
          } else if (exited) {
            finish();
            reject(new Error(`${name} exited before printing ${pattern}:\n${out.slice(-2000)}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`${name}: no ${pattern} within ${timeoutMs} ms:\n${out.slice(-2000)}`));
        }, timeoutMs);
        const finish = (): void => {
          clearTimeout(timer);
          watchers.delete(check);
        };
        watchers.add(check);
        check();
      });
    },
    async stop(graceMs = stopGraceMs) {
      if (exited) return;
      proc.stdin?.end();
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exitedPromise;
      clearTimeout(timer);
    },
  };
  children.add(child);
  return child;
}

/** Stops every child still running. */
export async function killAll(): Promise<void> {
  await Promise.all([...children].map((c) => c.stop()));
}

process.on('exit', () => {
  for (const c of children) {
    try {
      c.proc.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});
