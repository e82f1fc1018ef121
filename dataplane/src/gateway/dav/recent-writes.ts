// The files this gateway's WebDAV PUTs committed in the last second (ADR 74), so that the
// PROPFIND a client sends right after its PUT to read back what it wrote (rclone does, for every
// file) is answered without another round trip to the partition and etcd. Only the credentials
// that wrote a file get its answer, only for a second, and only when no write through this
// gateway touched the path since: any write forgets the paths it may change, before it starts
// and again once it is done, and a PUT whose path was touched while it ran remembers nothing.
// Pure (the time is passed in); the handler does the I/O.
import type { Entry } from '@meshwork/client';
import { isWithin } from './paths.ts';
import type { StoredProps } from './state.ts';

/** How long (ms) a PUT's answer is reused for the PROPFIND that follows it. */
export const recentWriteMs = 1000;
// Past this many remembered files or forgotten paths, what has expired is swept.
const sweepAbove = 10_000;

/** What a PUT committed: the entry the commit answered and the properties it stored with it. */
export interface RecentWrite {
  entry: Entry;
  props: StoredProps;
}

interface Remembered extends RecentWrite {
  token: string;
  at: number;
}

/** A mark taken when a PUT starts: `remember` refuses when a write touched the path after it. */
export interface WriteMark {
  sequence: number;
  at: number;
}

/** Recently written files by object and path; see the file comment. */
export class RecentWrites {
  readonly #ttlMs: number;
  readonly #files = new Map<string, Map<string, Remembered>>();
  // How many of the remembered files are below each folder (the root is ''), by object: a
  // write to a path that has none below it forgets one entry, without a look at the others.
  readonly #below = new Map<string, Map<string, number>>();
  // When each path was last touched by a write (its sequence number and time), by object.
  readonly #touched = new Map<string, Map<string, WriteMark>>();
  #sequence = 0;
  #count = 0;

  constructor(ttlMs = recentWriteMs) {
    this.#ttlMs = ttlMs;
  }

  /** A mark to pass to `remember` once the PUT committed. */
  mark(now: number): WriteMark {
    return { sequence: this.#sequence, at: now };
  }

  /** Forgets `path` and everything below it: a write may be changing them. */
  forget(objectId: string, path: string, now: number): void {
    const files = this.#files.get(objectId);
    if (files !== undefined) {
      this.#drop(objectId, files, path);
      if ((this.#below.get(objectId)?.get(path) ?? 0) > 0)
        for (const p of files.keys()) if (isWithin(p, path)) this.#drop(objectId, files, p);
      if (files.size === 0) this.#files.delete(objectId);
    }
    this.#touch(objectId, path, now);
  }

  /**
   * Remembers what a PUT of `path` that started at `since` committed, unless a write touched the
   * path (or a folder above it) since then or the PUT took longer than the time to live: its
   * answer could then be older than the entry. Either way the path counts as touched.
   */
  remember(token: string, objectId: string, path: string, write: RecentWrite, since: WriteMark, now: number): void {
    const fresh = now - since.at < this.#ttlMs && !this.#touchedSince(objectId, path, since.sequence);
    const previous = this.#files.get(objectId);
    if (previous !== undefined) this.#drop(objectId, previous, path);
    this.#touch(objectId, path, now);
    if (!fresh) return;
    if (this.#count >= sweepAbove) this.#sweep(now);
    // Looked up after the sweep, which drops an object's map once it is empty.
    let byPath = this.#files.get(objectId);
    if (byPath === undefined) this.#files.set(objectId, (byPath = new Map<string, Remembered>()));
    byPath.set(path, { ...write, token, at: now });
    let below = this.#below.get(objectId);
    if (below === undefined) this.#below.set(objectId, (below = new Map<string, number>()));
    for (const folder of foldersAbove(path)) below.set(folder, (below.get(folder) ?? 0) + 1);
    this.#count++;
  }

  /** Forgets one remembered file, and counts it out of the folders above it. */
  #drop(objectId: string, files: Map<string, Remembered>, path: string): void {
    if (!files.delete(path)) return;
    const below = this.#below.get(objectId);
    if (below === undefined) return;
    for (const folder of foldersAbove(path)) {
      const n = (below.get(folder) ?? 0) - 1;
      if (n > 0) below.set(folder, n);
      else below.delete(folder);
    }
    if (below.size === 0) this.#below.delete(objectId);
  }

  /** What the PUT of `path` with these credentials committed in the last second, if nothing touched it since. */
  recall(token: string, objectId: string, path: string, now: number): RecentWrite | undefined {
    const found = this.#files.get(objectId)?.get(path);
    if (found === undefined || found.token !== token || now - found.at >= this.#ttlMs) return undefined;
    return { entry: found.entry, props: found.props };
  }

  #touch(objectId: string, path: string, now: number): void {
    let byPath = this.#touched.get(objectId);
    if (byPath === undefined) this.#touched.set(objectId, (byPath = new Map<string, WriteMark>()));
    byPath.set(path, { sequence: ++this.#sequence, at: now });
    if (byPath.size >= sweepAbove) this.#sweep(now);
  }

  #touchedSince(objectId: string, path: string, sequence: number): boolean {
    const byPath = this.#touched.get(objectId);
    if (byPath === undefined) return false;
    // The path itself, each folder above it, and the object's root.
    for (let p = path; ; p = p.slice(0, Math.max(0, p.lastIndexOf('/')))) {
      if ((byPath.get(p)?.sequence ?? -1) > sequence) return true;
      if (p === '') return false;
    }
  }

  // A mark older than the time to live is older than every PUT that may still remember.
  #sweep(now: number): void {
    this.#count = 0;
    for (const [objectId, files] of this.#files) {
      for (const [p, f] of files) if (now - f.at >= this.#ttlMs) this.#drop(objectId, files, p);
      if (files.size === 0) this.#files.delete(objectId);
      else this.#count += files.size;
    }
    for (const [objectId, byPath] of this.#touched) {
      for (const [p, m] of byPath) if (now - m.at >= this.#ttlMs) byPath.delete(p);
      if (byPath.size === 0) this.#touched.delete(objectId);
    }
  }
}

/** The folders above a path, nearest first, ending with the root (''). */
function foldersAbove(path: string): string[] {
  const folders: string[] = [];
  for (let end = path.lastIndexOf('/'); end > 0; end = path.lastIndexOf('/', end - 1)) folders.push(path.slice(0, end));
  if (path !== '') folders.push('');
  return folders;
}
