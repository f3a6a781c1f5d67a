/**
 * Child processes for the end-to-end tests (kubectl, curl, Chromium, the
 * demo CLI): each runs in its own process group, so a kill reaches whatever
 * it forked (Chromium's helpers, a `bash -c` pipeline); output is collected;
 * a line can be awaited with a deadline; and every group still open when the
 * test process ends is killed, so a failed test leaks nothing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (test/helpers/../..). */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** An executable by absolute path or on PATH; undefined when there is none. */
export function findBinary(...names: string[]): string | undefined {
  for (const name of names) {
    const candidates = isAbsolute(name) ? [name] : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, name));
    for (const file of candidates) {
      try {
        accessSync(file, constants.X_OK);
        return file;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

/**
 * The environment without the machine's proxy settings (a stray ALL_PROXY or
 * NO_PROXY would change what curl and Chromium do) and without KUBECONFIG.
 */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/_proxy$/i.test(k) || k === 'KUBECONFIG') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Process groups that are still open (their stdio not yet closed). */
const open = new Set<Proc>();
process.on('exit', () => {
  for (const p of open) p.kill();
});

export interface ProcOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to stdin, which is then closed. Without it stdin is closed at once, unless `keepStdin`. */
  input?: string | Buffer;
  /** Leave stdin open (e.g. a client that must not see EOF). */
  keepStdin?: boolean;
}

/** A child process in its own process group, with its output collected. */
export class Proc {
  readonly child: ChildProcess;
  readonly command: string;
  stdout = '';
  stderr = '';
  /** Set from 'exit'. */
  exit: Exit | undefined;
  /** Resolves once the process exited and its stdio closed. */
  readonly closed: Promise<Exit>;
  #isClosed = false;
  readonly #listeners = new Set<() => void>();

  constructor(file: string, args: readonly string[], options: ProcOptions = {}) {
    this.command = [file, ...args].join(' ');
    // detached: the child leads a new process group (setsid), so -pid reaches all it forks.
    this.child = spawn(file, args, {
      cwd: options.cwd ?? REPO_ROOT,
      env: options.env ?? cleanEnv(),
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    open.add(this);
    this.child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      this.stdout += s;
      this.#notify();
    });
    this.child.stderr?.setEncoding('utf8').on('data', (s: string) => {
      this.stderr += s;
      this.#notify();
    });
    this.child.stdin?.on('error', () => {});
    if (options.input !== undefined) this.child.stdin?.end(options.input);
    else if (!options.keepStdin) this.child.stdin?.end();
    this.child.on('exit', (code, signal) => {
      this.exit = { code, signal };
      this.#notify();
    });
    this.closed = new Promise<Exit>((resolve) => {
      const done = (): void => {
        if (this.#isClosed) return;
        this.#isClosed = true;
        open.delete(this);
        this.#notify();
        resolve(this.exit ?? { code: null, signal: null });
      };
      this.child.on('close', done);
      this.child.on('error', (err) => {
        this.stderr += `\n[spawn error] ${err.message}`;
        done();
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** stdout and stderr together, for assertion messages. */
  get output(): string {
    return `$ ${this.command}\n--- stdout ---\n${this.stdout}\n--- stderr ---\n${this.stderr}`;
  }

  #notify(): void {
    for (const l of [...this.#listeners]) l();
  }

  /**
   * Resolves with the first match of `re` in the chosen output (from
   * character `from` on: e.g. the length before an action, to see only what
   * it printed); rejects when the process closes first or after `timeoutMs`.
   */
  waitFor(
    re: RegExp,
    { stream = 'any', timeoutMs = 10_000, from = 0 }: { stream?: 'stdout' | 'stderr' | 'any'; timeoutMs?: number; from?: number } = {},
  ): Promise<RegExpMatchArray> {
    if (stream === 'any' && from !== 0) throw new TypeError('`from` needs a single stream');
    return new Promise((resolve, reject) => {
      const text = (): string => (stream === 'stdout' ? this.stdout.slice(from) : stream === 'stderr' ? this.stderr.slice(from) : `${this.stdout}\n${this.stderr}`);
      const finish = (): void => {
        clearTimeout(timer);
        this.#listeners.delete(check);
      };
      const check = (): void => {
        const m = re.exec(text());
        if (m) {
          finish();
          resolve(m);
        } else if (this.#isClosed || this.exit) {
          finish();
          reject(new Error(`${re} never appeared: the process ended (${JSON.stringify(this.exit)})\n${this.output}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${re} did not appear within ${timeoutMs} ms\n${this.output}`));
      }, timeoutMs);
      this.#listeners.add(check);
      check();
    });
  }

  /** Sends `signal` to the process itself (not its group), e.g. SIGTERM for a clean shutdown. */
  signal(signal: NodeJS.Signals): void {
    if (this.pid !== undefined && !this.exit) {
      try {
        process.kill(this.pid, signal);
      } catch {
        // already gone
      }
    }
  }

  /** Kills the whole process group (default SIGKILL), unless it has already closed. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.pid === undefined || this.#isClosed) return;
    try {
      process.kill(-this.pid, signal);
    } catch {
      // the group is gone
    }
  }

  /**
   * Waits for the process to close; after `timeoutMs` kills its group.
   * `timedOut` tells which happened.
   */
  async settle(timeoutMs: number): Promise<Exit & { timedOut: boolean }> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.kill();
    }, timeoutMs);
    try {
      const exit = await this.closed;
      return { ...exit, timedOut };
    } finally {
      clearTimeout(timer);
    }
  }
}

export interface RunResult extends Exit {
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
  /** Command and output, for assertion messages. */
  output: string;
}

/** Runs a command to its end, killing its process group after `timeoutMs`. */
export async function run(file: string, args: readonly string[], options: ProcOptions & { timeoutMs?: number } = {}): Promise<RunResult> {
  const started = performance.now();
  const p = new Proc(file, args, options);
  const exit = await p.settle(options.timeoutMs ?? 15_000);
  return { ...exit, stdout: p.stdout, stderr: p.stderr, ms: performance.now() - started, output: p.output };
}

export interface CurlOptions {
  env?: Record<string, string>;
  input?: string;
  /** curl's own --max-time, seconds. Default 10. */
  maxTime?: number;
}

/** curl -sS with a deadline, in an environment without the machine's proxy settings. */
export function curl(args: readonly string[], options: CurlOptions = {}): Promise<RunResult> {
  const maxTime = options.maxTime ?? 10;
  return run(findBinary('curl') ?? 'curl', ['-sS', '--max-time', String(maxTime), ...args], {
    env: cleanEnv(options.env),
    ...(options.input !== undefined ? { input: options.input } : {}),
    timeoutMs: (maxTime + 5) * 1000,
  });
}
