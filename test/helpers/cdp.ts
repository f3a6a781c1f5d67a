/**
 * Headless Chromium driven over the DevTools protocol on a pipe
 * (`--remote-debugging-pipe`: Chromium reads commands on fd 3 and writes
 * answers and events on fd 4, each a JSON message ended by a NUL byte;
 * https://chromedevtools.github.io/devtools-protocol/). No port, no
 * WebSocket client, no puppeteer: enough to open a page, evaluate
 * expressions in it, emulate dark mode and take screenshots.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { cleanEnv } from './e2e-procs.js';

interface Pending {
  resolve: (result: Record<string, unknown>) => void;
  reject: (error: Error) => void;
}

export interface CdpEvent {
  method: string;
  params: Record<string, unknown>;
  sessionId?: string;
}

export class Browser {
  readonly #child: ChildProcess;
  readonly #input: Writable;
  readonly #profile: string;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #buffer = '';
  /** Every event received, in order (tests look for console messages and CSP reports here). */
  readonly events: CdpEvent[] = [];
  stderr = '';

  private constructor(child: ChildProcess, profile: string) {
    this.#child = child;
    this.#profile = profile;
    this.#input = child.stdio[3] as Writable;
    const output = child.stdio[4] as Readable;
    output.setEncoding('utf8');
    output.on('data', (chunk: string) => this.#onData(chunk));
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    child.on('exit', () => {
      for (const p of this.#pending.values()) p.reject(new Error(`chromium exited\n${this.stderr.slice(-2000)}`));
      this.#pending.clear();
    });
  }

  static async launch(binary: string, extraArgs: string[] = []): Promise<Browser> {
    const profile = await mkdtemp(join(tmpdir(), 'kubesocks-cdp-'));
    const child = spawn(
      binary,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--no-proxy-server',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-dev-shm-usage',
        '--disable-default-apps',
        '--no-pings',
        '--hide-scrollbars',
        '--remote-debugging-pipe',
        `--user-data-dir=${profile}`,
        ...extraArgs,
        'about:blank',
      ],
      { env: cleanEnv({ HOME: profile }), detached: true, stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
    );
    return new Browser(child, profile);
  }

  #onData(chunk: string): void {
    this.#buffer += chunk;
    let end: number;
    while ((end = this.#buffer.indexOf('\0')) >= 0) {
      const text = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 1);
      const message = JSON.parse(text) as { id?: number; result?: Record<string, unknown>; error?: { message: string }; method?: string; params?: Record<string, unknown>; sessionId?: string };
      if (message.id !== undefined) {
        const pending = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        if (message.error) pending?.reject(new Error(`CDP: ${message.error.message}`));
        else pending?.resolve(message.result ?? {});
      } else if (message.method) {
        this.events.push({ method: message.method, params: message.params ?? {}, ...(message.sessionId ? { sessionId: message.sessionId } : {}) });
      }
    }
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#input.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    });
  }

  /** Opens a new tab on `url` and resolves once it has loaded. */
  async open(url: string): Promise<Page> {
    const { targetId } = (await this.send('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
    const { sessionId } = (await this.send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
    const page = new Page(this, sessionId);
    await page.send('Page.enable');
    await page.send('Runtime.enable');
    await page.send('Log.enable');
    await page.goto(url);
    return page;
  }

  async close(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.pid !== undefined) {
      const exited = new Promise((resolve) => this.#child.once('exit', resolve));
      try {
        process.kill(-this.#child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await exited;
    }
    await rm(this.#profile, { recursive: true, force: true });
  }
}

export class Page {
  readonly #browser: Browser;
  readonly sessionId: string;

  constructor(browser: Browser, sessionId: string) {
    this.#browser = browser;
    this.sessionId = sessionId;
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.#browser.send(method, params, this.sessionId);
  }

  /** Navigates and waits for the load event. */
  async goto(url: string): Promise<void> {
    const from = this.#browser.events.length;
    await this.send('Page.navigate', { url });
    await this.waitForEvent('Page.loadEventFired', from, 15_000);
  }

  async waitForEvent(method: string, from: number, timeoutMs: number): Promise<CdpEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const event = this.#browser.events.slice(from).find((e) => e.method === method && e.sessionId === this.sessionId);
      if (event) return event;
      if (Date.now() > deadline) throw new Error(`no ${method} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Evaluates an expression in the page; its value (JSON-able). */
  async evaluate<T>(expression: string): Promise<T> {
    const result = (await this.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true })) as {
      result: { value?: T };
      exceptionDetails?: { text: string; exception?: { description?: string } };
    };
    if (result.exceptionDetails) throw new Error(`page: ${result.exceptionDetails.exception?.description ?? result.exceptionDetails.text}`);
    return result.result.value as T;
  }

  /** Polls `expression` until it is truthy; its value. */
  async waitFor<T>(expression: string, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await this.evaluate<T>(expression);
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`page: ${expression} stayed falsy for ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** A PNG of the page at `width`×`height` CSS pixels. */
  async screenshot(width: number, height: number): Promise<Buffer> {
    await this.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false });
    const { data } = (await this.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: false })) as { data: string };
    return Buffer.from(data, 'base64');
  }

  /** Console messages and log entries (CSP violations are reported there). */
  messages(): string[] {
    return this.#browser.events
      .filter((e) => e.sessionId === this.sessionId && (e.method === 'Log.entryAdded' || e.method === 'Runtime.consoleAPICalled' || e.method === 'Runtime.exceptionThrown'))
      .map((e) => JSON.stringify(e.params).slice(0, 500));
  }
}
