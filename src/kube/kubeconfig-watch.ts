/**
 * Tells when any of a set of files changed, however the change was made.
 *
 * Why folders and not the files: `fs.watch` on a file follows its inode, and
 * editors (vim's backupcopy, VS Code), `kubectl config`, `aws eks
 * update-kubeconfig` and `gcloud` replace a kubeconfig by writing a temporary
 * file and renaming it over the old one: a watch on the file sees one
 * `rename` and then nothing ever again. A watch on the folder sees every
 * write, rename and re-creation by name. A file that is a symlink is also
 * watched where it points (a dotfiles repository, a ConfigMap mount whose
 * `..data` link is swapped), and a swapped link counts as a change.
 *
 * A folder that cannot be watched (missing, inotify limit reached, deleted
 * while watched) falls back to polling the file's stat every 2 s, which also
 * sees a file or folder created later. Events are coalesced: the callback
 * runs once the files have been quiet for `debounceMs` (a write is often
 * several events: truncate, write, chmod; a rename two), so a reader does not
 * see a file half-written by the writer it was told about.
 *
 * Nothing here keeps the process alive (watchers and timers are unref'd);
 * close() releases every watcher.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { debuglog } from 'node:util';

const debug = debuglog('kubesocks:kube');

/** Quiet time after the last event before the callback runs. */
export const DEFAULT_DEBOUNCE_MS = 200;
/** Stat interval of the polling fallback. */
const POLL_INTERVAL_MS = 2_000;

export interface FileWatcherOptions {
  /** Quiet time after the last event before `onChange` runs (ms). Default 200. */
  debounceMs?: number;
}

/** One watched folder and the names in it that matter, each with the path it is reported as. */
interface WatchedFolder {
  watcher: fs.FSWatcher;
  names: Map<string, Set<string>>;
}

export class FileWatcher {
  readonly #onChange: (files: string[]) => void;
  readonly #debounceMs: number;
  readonly #folders = new Map<string, WatchedFolder>();
  /** Files polled because their folder could not be watched. */
  readonly #polled = new Map<string, () => void>();
  /** Where each watched path pointed when last looked at (its realpath, or '' when missing). */
  readonly #targets = new Map<string, string>();
  readonly #pending = new Set<string>();
  #files: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  /** Watches `files` (absolute or relative to the working directory); `onChange` gets the ones that changed. */
  constructor(files: readonly string[], onChange: (files: string[]) => void, options: FileWatcherOptions = {}) {
    this.#onChange = onChange;
    this.#debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    this.watch(files);
  }

  /** The files watched now. */
  get files(): readonly string[] {
    return this.#files;
  }

  /**
   * Watches exactly `files` from now on (a re-read kubeconfig may name
   * other CA or token files). Unchanged folders keep their watchers.
   */
  watch(files: readonly string[]): void {
    if (this.#closed) return;
    this.#files = [...new Set(files.map((f) => path.resolve(f)))];
    this.#arm();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    for (const folder of this.#folders.values()) folder.watcher.close();
    this.#folders.clear();
    for (const stop of this.#polled.values()) stop();
    this.#polled.clear();
    this.#pending.clear();
  }

  /** (Re)builds the watchers for the current files and where their links point now. */
  #arm(): void {
    const wanted = new Map<string, Map<string, Set<string>>>();
    const want = (folder: string, name: string, reported: string): void => {
      let names = wanted.get(folder);
      if (!names) wanted.set(folder, (names = new Map()));
      let as = names.get(name);
      if (!as) names.set(name, (as = new Set()));
      as.add(reported);
    };
    for (const file of this.#files) {
      want(path.dirname(file), path.basename(file), file);
      const target = realpath(file);
      this.#targets.set(file, target);
      if (target !== '' && target !== file) want(path.dirname(target), path.basename(target), file);
    }
    for (const [folder, watched] of this.#folders) {
      if (!wanted.has(folder)) {
        watched.watcher.close();
        this.#folders.delete(folder);
      }
    }
    for (const [file, stop] of this.#polled) {
      if (!this.#files.includes(file)) {
        stop();
        this.#polled.delete(file);
      }
    }
    for (const [folder, names] of wanted) {
      const existing = this.#folders.get(folder);
      if (existing) {
        existing.names = names;
        continue;
      }
      try {
        const watcher = fs.watch(folder, { persistent: false }, (_event, name) => this.#folderEvent(folder, name === null ? null : String(name)));
        watcher.on('error', (error) => this.#folderFailed(folder, error));
        this.#folders.set(folder, { watcher, names });
      } catch (error) {
        debug('cannot watch %s (%s): polling its files', folder, (error as Error).message);
        for (const reported of [...names.values()].flatMap((s) => [...s])) this.#poll(reported);
      }
    }
  }

  #folderEvent(folder: string, name: string | null): void {
    const watched = this.#folders.get(folder);
    if (!watched || this.#closed) return;
    // A deleted folder's watch goes silent (inotify drops it) without an error.
    if (!fs.existsSync(folder)) {
      this.#folderFailed(folder, new Error('the folder was removed'));
      return;
    }
    // Linux names the entry; some platforms do not: then every file there may have changed.
    const hits = name === null ? [...watched.names.values()].flatMap((s) => [...s]) : [...(watched.names.get(name) ?? [])];
    for (const file of hits) this.#changed(file);
    // A swapped symlink (or a link's folder renamed) changes what a file is without touching its name.
    let relinked = false;
    for (const file of this.#files) {
      if (realpath(file) !== this.#targets.get(file)) {
        relinked = true;
        this.#changed(file);
      }
    }
    if (relinked) this.#arm();
  }

  /** The folder went away or the watch broke: poll its files instead (polling sees it come back). */
  #folderFailed(folder: string, error: Error): void {
    const watched = this.#folders.get(folder);
    if (!watched) return;
    debug('watch of %s failed (%s): polling its files', folder, error.message);
    watched.watcher.close();
    this.#folders.delete(folder);
    for (const file of [...watched.names.values()].flatMap((s) => [...s])) {
      this.#poll(file);
      this.#changed(file);
    }
  }

  #poll(file: string): void {
    if (this.#polled.has(file)) return;
    const listener = (now: fs.Stats, before: fs.Stats): void => {
      if (now.mtimeMs !== before.mtimeMs || now.size !== before.size || now.ino !== before.ino || now.nlink !== before.nlink) this.#changed(file);
    };
    const watcher = fs.watchFile(file, { persistent: false, interval: POLL_INTERVAL_MS }, listener);
    watcher.unref();
    this.#polled.set(file, () => fs.unwatchFile(file, listener));
  }

  #changed(file: string): void {
    if (this.#closed) return;
    this.#pending.add(file);
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#flush(), this.#debounceMs);
    this.#timer.unref();
  }

  #flush(): void {
    this.#timer = undefined;
    if (this.#closed || this.#pending.size === 0) return;
    const files = [...this.#pending];
    this.#pending.clear();
    // A file replaced by rename may now be a link elsewhere (or no longer one).
    this.#arm();
    this.#onChange(files);
  }
}

/** Where a path leads after every symlink, or '' when it does not exist. */
function realpath(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    return '';
  }
}
