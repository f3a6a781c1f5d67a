/**
 * Where the proxy's credentials come from, first match wins:
 *
 *   1. `--auth USER:PASS` or `--auth-file FILE` (both: a usage error);
 *   2. `KUBESOCKS_AUTH=USER:PASS`.
 *
 * A command line can be read by every local user (`ps`, /proc/PID/cmdline);
 * the environment of a process only by its owner and root, and a file by
 * whom its mode allows. So `--auth-file` is checked as ssh checks a private
 * key, before anything starts (exit 2, one line saying the fix):
 *
 * - it must be a regular file (not a directory, FIFO or device; a symlink
 *   is followed and its target checked);
 * - it must be owned by the user running kubesocks or by root (as sshd's
 *   StrictModes accepts for authorized_keys);
 * - no permission bit for group or others (`mode & 077`, as ssh refuses an
 *   "UNPROTECTED PRIVATE KEY FILE"): `chmod 600 FILE`. This holds for a
 *   root-owned file too, unlike ssh's client, because a password others can
 *   read is no secret whoever owns the file.
 *
 * The checks are made on the opened file (fstat), so the file read is the
 * file checked. Windows has no such modes: there only the first check applies.
 * Access control lists and the directory's permissions are not examined.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { validateCredentials, type Credentials } from '../proxy/auth.js';
import { UsageError } from './flags.js';

/** Longer than any USER:PASSWORD the proxy accepts (255 bytes each, RFC 1929). */
const MAX_AUTH_FILE_BYTES = 64 * 1024;

export interface AuthFlags {
  auth?: string | undefined;
  'auth-file'?: string | undefined;
}

/** The credentials the flags or the environment give, checked (undefined: none). */
export function resolveCredentials(flags: AuthFlags, env: NodeJS.ProcessEnv = process.env): Credentials | undefined {
  const file = flags['auth-file'];
  if (flags.auth !== undefined && file !== undefined) {
    throw new UsageError('--auth and --auth-file both give the credentials: use one (prefer --auth-file, other local users can read a command line)');
  }
  if (file !== undefined) return parseCredentials(readAuthFile(file), `--auth-file ${file}`, 'its first line must be USER:PASSWORD');
  if (flags.auth !== undefined) return parseCredentials(flags.auth, '--auth', 'expected USER:PASSWORD (or set KUBESOCKS_AUTH=USER:PASSWORD)');
  const fromEnv = env.KUBESOCKS_AUTH;
  if (fromEnv === undefined || fromEnv === '') return undefined;
  return parseCredentials(fromEnv, 'KUBESOCKS_AUTH', 'expected USER:PASSWORD');
}

/** `USER:PASSWORD`, split at the first colon (the password may contain colons), checked as the proxy will. */
function parseCredentials(value: string, source: string, expected: string): Credentials {
  const colon = value.indexOf(':');
  if (colon <= 0 || colon === value.length - 1) throw new UsageError(`${source}: ${expected}`);
  const creds = { username: value.slice(0, colon), password: value.slice(colon + 1) };
  try {
    validateCredentials(creds);
  } catch (error) {
    // The message names the field and the rule, never the value.
    throw new UsageError(`${source}: ${(error as Error).message}`);
  }
  return creds;
}

/** The first line of FILE (its line ending stripped), after the ownership and permission checks above. */
export function readAuthFile(path: string): string {
  const flag = `--auth-file ${path}`;
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UsageError(`${flag}: no such file`);
    if (code === 'EACCES') throw new UsageError(`${flag}: permission denied: the file must be readable by you (and only you: chmod 600 ${shellWord(path)})`);
    throw new UsageError(`${flag}: cannot open it (${code ?? (error as Error).message})`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new UsageError(`${flag}: not a regular file; write USER:PASSWORD in a file of its own (chmod 600)`);
    const uid = process.platform === 'win32' ? undefined : process.getuid?.();
    if (uid !== undefined) {
      if (stat.uid !== uid && stat.uid !== 0) {
        throw new UsageError(`${flag}: owned by another user (uid ${stat.uid}); use a file of your own: chown ${uid} ${shellWord(path)} && chmod 600 ${shellWord(path)}`);
      }
      const loose = stat.mode & 0o077;
      if (loose !== 0) {
        const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
        throw new UsageError(`${flag}: permissions ${mode} are too open, other users could read or change the password: chmod 600 ${shellWord(path)}`);
      }
    }
    if (stat.size > MAX_AUTH_FILE_BYTES) throw new UsageError(`${flag}: ${stat.size} bytes is too large for USER:PASSWORD`);
    const buffer = Buffer.alloc(Math.min(stat.size, MAX_AUTH_FILE_BYTES));
    let length = 0;
    while (length < buffer.length) {
      const n = readSync(fd, buffer, length, buffer.length - length, length);
      if (n === 0) break;
      length += n;
    }
    const firstLine = buffer.subarray(0, length).toString('utf8').split('\n')[0] ?? '';
    const line = firstLine.endsWith('\r') ? firstLine.slice(0, -1) : firstLine;
    if (line === '') throw new UsageError(`${flag}: the first line is empty; write USER:PASSWORD in it`);
    return line;
  } finally {
    closeSync(fd);
  }
}

/** A path as a shell word, quoted when it needs to be (for the fix printed in messages). */
function shellWord(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
}
