/**
 * `kubesocks env` prints the proxy variables for `eval "$(kubesocks env)"`;
 * `kubesocks exec -- CMD ARGS…` runs a program with them, and — when
 * proxychains-ng is installed — under proxychains4 too, so that programs that
 * ignore proxy variables (psql, mysql, redis-cli) reach cluster names as
 * well. Both point at a proxy that is already running (`kubesocks` or
 * `kubesocks demo`); `exec` checks that it answers before starting anything.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { constants as osConstants, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { UsageError } from './flags.js';
import { resolveCredentials } from './credentials.js';
import { defaultListen, formatAddress, parseListen, type ListenAddress } from './listen-address.js';
import { exportLines, proxyVariables, proxychainsConfig, proxychainsCredentialsProblem, type ProxyEndpoint } from './proxy-env.js';

export const ENV_HELP = `Usage: kubesocks env [--listen HOST:PORT]

Prints export lines that point programs at a running kubesocks proxy:
  eval "$(kubesocks env)"
sets ALL_PROXY (socks5h), HTTP_PROXY, HTTPS_PROXY, both cases, and NO_PROXY
for loopback. With KUBESOCKS_AUTH=USER:PASS the URLs carry the credentials.

Flags:
  --listen HOST:PORT   the proxy's address (default $KUBESOCKS_LISTEN, else 127.0.0.1:1080)
  -h, --help           this help
`;

export const EXEC_HELP = `Usage: kubesocks exec [--listen HOST:PORT] [--no-proxychains] -- COMMAND [ARGS…]

Runs COMMAND with the proxy variables of "kubesocks env" pointing at a running
kubesocks proxy. When proxychains4 (proxychains-ng) is installed, COMMAND also
runs under it, with the proxy resolving names, so programs that ignore proxy
variables reach the cluster by name too:
  kubesocks exec -- psql -h postgres.db.svc.cluster.local -U app
Without proxychains4 only programs that honour the variables (curl, most
HTTP clients, git over https) go through the proxy; install it
(apt install proxychains4, brew install proxychains-ng) or use
"kubesocks forward" for the others.

Flags:
  --listen HOST:PORT   the proxy's address (default $KUBESOCKS_LISTEN, else 127.0.0.1:1080)
  --no-proxychains     set the variables only, even when proxychains4 is installed
  -h, --help           this help
Credentials for a proxy started with --auth: KUBESOCKS_AUTH=USER:PASS.
`;

const PROXY_CHECK_TIMEOUT_MS = 2000;

interface ExecArgs {
  listen: ListenAddress;
  proxychains: boolean;
  help: boolean;
  command: string[];
}

/**
 * Flags come before the command; everything from `--` (or from the first
 * word that is not a flag) on is the command, whose own flags (`psql -h`)
 * must not be read as ours.
 */
function parseExecArgs(args: string[], allowCommand: boolean): ExecArgs {
  const parsed: ExecArgs = { listen: parseListen(defaultListen()), proxychains: true, help: false, command: [] };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      parsed.command = args.slice(i + 1);
      break;
    }
    if (arg === '-h' || arg === '--help') parsed.help = true;
    else if (arg === '--no-proxychains' && allowCommand) parsed.proxychains = false;
    else if (arg === '--listen' || arg.startsWith('--listen=')) {
      const value = arg === '--listen' ? args[++i] : arg.slice('--listen='.length);
      if (value === undefined) throw new UsageError('--listen needs a value (HOST:PORT)');
      parsed.listen = parseListen(value);
    } else if (arg.startsWith('-')) throw new UsageError(`unknown flag ${arg} (see kubesocks ${allowCommand ? 'exec' : 'env'} --help)`);
    else if (allowCommand) {
      parsed.command = args.slice(i);
      break;
    } else throw new UsageError(`kubesocks env takes no arguments, got "${arg}"`);
  }
  return parsed;
}

function endpointOf(listen: ListenAddress): ProxyEndpoint {
  return { host: listen.host, port: listen.port, auth: resolveCredentials({}) };
}

export async function env(args: string[]): Promise<void> {
  const parsed = parseExecArgs(args, false);
  if (parsed.help) {
    process.stdout.write(ENV_HELP);
    return;
  }
  process.stdout.write(exportLines(proxyVariables(endpointOf(parsed.listen))));
}

/** An executable on PATH (or the path itself when it has a slash). */
function which(name: string): string | undefined {
  const candidates = name.includes('/') ? [name] : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, name));
  for (const file of candidates) {
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Resolves when the proxy answers `/healthz`; a one-line error otherwise. */
function checkProxy(listen: ListenAddress): Promise<void> {
  const address = formatAddress(listen);
  const notRunning = (why: string): Error =>
    new Error(`no kubesocks proxy answers at ${address} (${why}): start one with "kubesocks" (or "kubesocks demo"), or name it with --listen`);
  return new Promise((resolve, reject) => {
    const req = request({ host: listen.host, port: listen.port, path: '/healthz', timeout: PROXY_CHECK_TIMEOUT_MS }, (res) => {
      res.resume();
      // 200 from a kubesocks proxy; 407 from one with --auth (still ours).
      if (res.statusCode === 200 || res.statusCode === 407) resolve();
      else reject(notRunning(`/healthz answered ${res.statusCode}`));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${PROXY_CHECK_TIMEOUT_MS / 1000} s`)));
    req.on('error', (error: NodeJS.ErrnoException) => reject(notRunning(error.code ?? error.message)));
    req.end();
  });
}

/**
 * Whether this process is in its terminal's foreground process group, where
 * the terminal delivers Ctrl-C to every member. Linux only (/proc); elsewhere
 * false, and every signal is passed on.
 */
function inForegroundGroup(): boolean {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // Fields after the command name (which may hold spaces and parentheses):
    // state ppid pgrp session tty_nr tpgid …
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pgrp = Number(fields[2]);
    const tpgid = Number(fields[5]);
    return tpgid > 0 && tpgid === pgrp;
  } catch {
    return false;
  }
}

export async function exec(args: string[]): Promise<void> {
  const parsed = parseExecArgs(args, true);
  if (parsed.help) {
    process.stdout.write(EXEC_HELP);
    return;
  }
  const [command, ...commandArgs] = parsed.command;
  if (command === undefined) throw new UsageError('exec needs a command: kubesocks exec -- COMMAND [ARGS…] (see kubesocks exec --help)');
  if (!which(command)) {
    process.stderr.write(`kubesocks: ${command}: command not found\n`);
    process.exit(127);
  }
  const endpoint = endpointOf(parsed.listen);
  const proxychains = parsed.proxychains ? which('proxychains4') : undefined;
  const credentialsProblem = proxychains ? proxychainsCredentialsProblem(endpoint.auth) : undefined;
  if (credentialsProblem) throw new UsageError(`${credentialsProblem}: use credentials without them, or run with --no-proxychains`);
  await checkProxy(parsed.listen);
  const variables = proxyVariables(endpoint);

  let scratch: string | undefined;
  let file = command;
  let argv = commandArgs;
  if (proxychains) {
    scratch = await mkdtemp(join(tmpdir(), 'kubesocks-exec-'));
    const config = join(scratch, 'proxychains.conf');
    try {
      // 0600: it may hold the proxy's password.
      await writeFile(config, proxychainsConfig(endpoint), { mode: 0o600 });
    } catch (error) {
      await rm(scratch, { recursive: true, force: true });
      throw error;
    }
    file = proxychains;
    argv = ['-q', '-f', config, command, ...commandArgs];
  } else if (parsed.proxychains) {
    process.stderr.write(
      'kubesocks: proxychains4 is not installed: only programs that honour ALL_PROXY/HTTP_PROXY will use the proxy; install proxychains4 (apt) or proxychains-ng (brew) for psql, mysql, redis-cli, or use "kubesocks forward"\n',
    );
  }

  const child = spawn(file, argv, { stdio: 'inherit', env: { ...process.env, ...variables } });
  // A `kill` aimed at us alone is passed on. Ctrl-C and Ctrl-\ from the
  // terminal already reach the whole foreground group, the child included:
  // passing them on too would interrupt it twice (a second Ctrl-C cancels
  // psql's cleanup, aborts Python's).
  const fromTerminal = inForegroundGroup();
  const forward = (signal: NodeJS.Signals) => () => {
    if (fromTerminal && (signal === 'SIGINT' || signal === 'SIGQUIT')) return;
    child.kill(signal);
  };
  for (const signal of ['SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, forward(signal));
  const code = await new Promise<number>((resolve) => {
    child.once('error', (error) => {
      process.stderr.write(`kubesocks: could not start ${command}: ${error.message}\n`);
      resolve(127);
    });
    child.once('exit', (exitCode, signal) => resolve(exitCode ?? 128 + (signal ? osConstants.signals[signal] : 0)));
  });
  if (scratch) await rm(scratch, { recursive: true, force: true });
  process.exit(code);
}

