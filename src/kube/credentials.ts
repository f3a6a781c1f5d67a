/**
 * The TLS and auth material for requests to the API server, computed by
 * @kubernetes/client-node's `applyToHTTPSOptions` and cached here.
 *
 * Why a cache on top of client-node:
 * - client-node's ExecAuth caches a plugin's credential only when it carries
 *   an `expirationTimestamp`; without one it runs the plugin on *every*
 *   request (node_modules/@kubernetes/client-node/dist/exec_auth.js,
 *   `getCredential`), and concurrent cold calls each spawn their own run.
 *   500 sockets opening at once must not start 500 `gcloud` processes.
 * - It reads ca/cert/key files synchronously on every call
 *   (`bufferFromFileOrString`).
 *
 * Policy: material is reused for `ttlMs` (60 s). That bounds how long a
 * rotated token file or a plugin credential without expiry is held (client-go
 * would hold the latter until a 401; re-running the plugin once a minute is
 * cheap and picks up rotations without a failed request first). Plugin
 * credentials *with* an expiry are still cached by client-node until then, so
 * refreshing our copy costs nothing. A credential that expires inside our
 * window yields one 401, after which `invalidate()` gets a fresh one — the
 * same path as a revoked token. Concurrent refreshes share one run.
 *
 * `invalidate()` (after a 401) drops the material *and* the KubeConfig
 * object: the kubeconfig files are read again (a `token-file` is only read by
 * client-node when the file is loaded, see config_types.js `findToken`), and
 * the new KubeConfig has fresh authenticators, so ExecAuth's cache — which
 * would otherwise keep returning an unexpired but rejected token — is gone.
 * At most one such re-read per second: the 401s of requests sent just before
 * it, and the retries of every watch under a revoked token, must not spawn a
 * plugin each.
 */
import type * as https from 'node:https';
import type * as http from 'node:http';
import { debuglog } from 'node:util';
import type { KubeConfig } from './lazy-kubeconfig.js';
import { firstLine, KubesocksError } from '../errors.js';
import { CREDENTIAL_TTL_MS } from '../net/timeouts.js';

const debug = debuglog('kubesocks:kube');

const MIN_RELOAD_INTERVAL_MS = 1_000;

/** What requestOptions() copies into every request. Never logged, never put on errors. */
export interface AuthMaterial {
  ca?: https.RequestOptions['ca'];
  cert?: https.RequestOptions['cert'];
  key?: https.RequestOptions['key'];
  servername?: string;
  rejectUnauthorized?: boolean;
  /** `user:password` for the (long deprecated) basic-auth users. */
  auth?: string;
  /** Authorization and Impersonate-* headers. */
  headers: Record<string, string>;
  /** Only when the cluster has a `proxy-url`: client-node's proxy agent, reused until the next refresh. */
  agent?: http.Agent;
}

export interface CredentialSource {
  /** The KubeConfig in use (current context already set). */
  current(): KubeConfig;
  /** Reads the kubeconfig again; null if that fails (the old one stays in use). */
  reload(): Promise<KubeConfig | null>;
  /** A copy of `kc` with fresh authenticators, for when reload() fails. */
  fresh(kc: KubeConfig): KubeConfig;
  contextName: string;
}

export class CredentialCache {
  #material: AuthMaterial | null = null;
  #fetchedAt = 0;
  #inflight: Promise<AuthMaterial> | null = null;
  #inflightReloads = false;
  #reloadedAt = 0;
  #stale = false;
  #kc: KubeConfig;

  readonly #source: CredentialSource;
  readonly #ttlMs: number;

  constructor(source: CredentialSource, ttlMs = CREDENTIAL_TTL_MS) {
    this.#source = source;
    this.#ttlMs = ttlMs;
    this.#kc = source.current();
  }

  /** The material, refreshed when older than the TTL or after invalidate(). */
  get(): Promise<AuthMaterial> {
    if (this.#material && !this.#stale && Date.now() - this.#fetchedAt < this.#ttlMs) {
      return Promise.resolve(this.#material);
    }
    // One refresh at a time: concurrent callers share it.
    this.#inflight ??= this.#refresh().finally(() => {
      this.#inflight = null;
    });
    return this.#inflight;
  }

  /**
   * Forget the material and the KubeConfig, so the next get() re-reads the
   * kubeconfig and re-runs the plugin. Absorbed while such a re-read is
   * running or happened less than a second ago.
   */
  invalidate(): void {
    if (this.#inflight && this.#inflightReloads) return;
    // Requests sent with the old credentials answer 401 after a refresh has
    // already replaced them; and a revoked token makes every watch fail over
    // and over. Neither should re-run the plugin each time: one re-read per
    // second at most.
    if (Date.now() - this.#reloadedAt < MIN_RELOAD_INTERVAL_MS) return;
    this.#stale = true;
  }

  async #refresh(): Promise<AuthMaterial> {
    this.#inflightReloads = this.#stale;
    if (this.#stale) {
      this.#reloadedAt = Date.now();
      const reloaded = await this.#source.reload();
      this.#kc = reloaded ?? this.#source.fresh(this.#kc);
      this.#stale = false;
      debug('credentials invalidated; kubeconfig %s', reloaded ? 're-read' : 'kept (re-read failed)');
    }
    const opts: https.RequestOptions = {};
    try {
      await this.#kc.applyToHTTPSOptions(opts);
    } catch (err) {
      throw credentialError(this.#kc, this.#source.contextName, err);
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(opts.headers ?? {})) {
      if (typeof value === 'string') headers[name] = value;
      else if (typeof value === 'number') headers[name] = String(value);
      else if (Array.isArray(value)) headers[name] = value.join(', ');
    }
    const cluster = this.#kc.getCurrentCluster();
    const material: AuthMaterial = { headers };
    if (opts.ca !== undefined) material.ca = opts.ca;
    if (opts.cert !== undefined) material.cert = opts.cert;
    if (opts.key !== undefined) material.key = opts.key;
    if (opts.servername !== undefined) material.servername = opts.servername;
    if (opts.rejectUnauthorized !== undefined) material.rejectUnauthorized = opts.rejectUnauthorized;
    if (typeof opts.auth === 'string') material.auth = opts.auth;
    // applyToHTTPSOptions builds a new agent on every call; only a proxy
    // agent is worth keeping (plain requests use the client's own agent).
    if (cluster?.proxyUrl && opts.agent) material.agent = opts.agent as http.Agent;
    this.#material = material;
    this.#fetchedAt = Date.now();
    debug('credentials refreshed for context %s', this.#source.contextName);
    return material;
  }
}

/**
 * A failure to produce credentials, as one line without secrets. Exec plugin
 * failures are the common case (not installed, login expired).
 */
function credentialError(kc: KubeConfig, contextName: string, err: unknown): KubesocksError {
  const user = kc.getCurrentUser();
  const exec = (user?.exec ?? user?.authProvider?.config?.exec) as
    | { command?: string; installHint?: string }
    | undefined;
  const code = (err as { code?: unknown } | null)?.code;
  const text = err instanceof Error ? err.message : String(err);
  if (exec?.command) {
    if (code === 'ENOENT') {
      const hint = exec.installHint ? ` ${firstLine(exec.installHint)}` : '';
      return new KubesocksError(
        'CONFIG',
        `context "${contextName}": the credential plugin "${exec.command}" was not found on PATH.${hint}`,
      );
    }
    const detail = lastLine(text) || 'it exited with an error and no message';
    return new KubesocksError(
      'CONFIG',
      `context "${contextName}": the credential plugin "${exec.command}" failed: ${detail} (run it by hand to see why, e.g. log in again)`,
    );
  }
  if (code === 'ENOENT' || code === 'EACCES') {
    return new KubesocksError('CONFIG', `context "${contextName}": cannot read a credential file: ${firstLine(text)}`);
  }
  return new KubesocksError('CONFIG', `context "${contextName}": cannot get credentials: ${firstLine(text)}`);
}

function lastLine(s: string): string {
  const lines = s.split('\n').filter((l) => l.trim() !== '');
  return (lines[lines.length - 1] ?? '').trim().slice(0, 300);
}
