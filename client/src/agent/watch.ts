// File-system hints for the sync loop: one fs.watch per directory of the folder. Node's
// `recursive: true` on Linux watches every file as well as every directory (one inotify watch
// and one handle each, so a folder of 10,000 files needs 10,000 watches, past many systems'
// limit), and answers each event in a directory with a synchronous readdir of all of it on
// the event loop: 1,000 files written into one directory cost a million directory entries
// read. A hint only says "look again"; the scan is the truth, so a directory's own watch,
// which names the child that changed, is all the loop needs.
import { watch, type FSWatcher } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Watches the directories of a folder and calls `onHint` with the relative path of what changed. */
export class FolderWatcher {
  readonly #root: string;
  readonly #onHint: (path: string) => void;
  readonly #ignored: (path: string) => boolean;
  readonly #watchers = new Map<string, FSWatcher>();
  #closed = false;

  /** Starts with the folder itself; `update` adds the directories a scan found. `ignored` says which new directories not to watch. */
  constructor(root: string, onHint: (path: string) => void, ignored: (path: string) => boolean = () => false) {
    this.#root = root;
    this.#onHint = onHint;
    this.#ignored = ignored;
    this.#add('');
  }

  /** The directories watched now (relative paths, '' for the folder). */
  get watched(): string[] {
    return [...this.#watchers.keys()];
  }

  /**
   * Watches exactly the folder and `dirs` (relative paths, as the scan found them: ignored
   * ones are not among them). Answers whether a directory was added: what changed in it before
   * its watch began gave no hint, so the caller looks again.
   */
  update(dirs: Iterable<string>): boolean {
    const wanted = new Set(['', ...dirs]);
    for (const [rel, watcher] of this.#watchers) {
      if (wanted.has(rel)) continue;
      watcher.close();
      this.#watchers.delete(rel);
    }
    let added = false;
    for (const rel of wanted) if (!this.#watchers.has(rel) && this.#add(rel)) added = true;
    return added;
  }

  close(): void {
    this.#closed = true;
    for (const watcher of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
  }

  #add(rel: string): boolean {
    if (this.#closed) return false;
    try {
      const watcher = watch(rel === '' ? this.#root : join(this.#root, ...rel.split('/')), (event, name) => {
        if (typeof name !== 'string') return this.#onHint(rel);
        const child = rel === '' ? name : `${rel}/${name}`;
        this.#onHint(child);
        // A new directory is watched at once, so that the files written into it next are hints too.
        if (event === 'rename' && !this.#watchers.has(child)) void this.#addTree(child);
      });
      watcher.on('error', () => {
        // The directory went away (or the system refused): the next scan decides again.
        watcher.close();
        if (this.#watchers.get(rel) === watcher) this.#watchers.delete(rel);
      });
      this.#watchers.set(rel, watcher);
      return true;
    } catch {
      return false; // gone, not a directory, or no more watches to be had: the periodic scan remains
    }
  }

  /** Watches a directory that just appeared, and the directories inside it. */
  async #addTree(rel: string): Promise<void> {
    const abs = join(this.#root, ...rel.split('/'));
    try {
      if (this.#ignored(rel) || !(await lstat(abs)).isDirectory() || this.#watchers.has(rel) || !this.#add(rel)) return;
      for (const entry of await readdir(abs, { withFileTypes: true })) {
        if (entry.isDirectory() && !this.#watchers.has(`${rel}/${entry.name}`)) await this.#addTree(`${rel}/${entry.name}`);
      }
    } catch {
      // Gone again already: nothing to watch.
    }
  }
}
