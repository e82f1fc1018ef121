// What WebDAV keeps beside the API's entries, in etcd under /mw/dav/ (ADR 38): locks, each a key
// under a lease of its timeout (soft state: a lock lapses with its lease, and every gateway
// replica sees the same locks), and per-resource properties (dead properties set by PROPPATCH,
// and the SHA1/MD5 of a file computed while its upload streamed, valid for that content only).
import { randomUUID } from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import { isWithin } from './paths.ts';

const locksPrefix = '/mw/dav/locks/';
const propsPrefix = '/mw/dav/props/';

/** A lock as stored. */
export interface DavLock {
  token: string;
  objectId: string;
  /** The entry path the lock was taken on ('' the object's root). */
  root: string;
  depth: '0' | 'infinity';
  scope: 'exclusive' | 'shared';
  owner: string;
  /** The device (app password) that took it: only its requests may use the token. */
  holder: string;
  timeoutSeconds: number;
  expiresAt: number;
}

/** A property as stored: its value as XML. */
export interface DeadProp {
  ns: string;
  name: string;
  xml: string;
}

/** A resource's stored properties. */
export interface StoredProps {
  dead: Record<string, DeadProp>;
  sums?: { contentHash: string; sha1: string; md5: string };
}

const lockKey = (objectId: string, token: string): string => `${locksPrefix}${objectId}/${token}`;
const propsKey = (objectId: string, path: string): string => `${propsPrefix}${objectId}/${encodeURIComponent(path)}`;

/** Whether a lock covers `path`: taken on it, or on an ancestor with depth infinity. */
export function lockCovers(lock: DavLock, path: string): boolean {
  return lock.root === path || (lock.depth === 'infinity' && isWithin(path, lock.root));
}

/** Most writes of properties in one etcd transaction (etcd allows 128 operations by default). */
const maxBatchedWrites = 100;

/** Property writes that go to etcd in one transaction: each key's latest value (undefined: delete it). */
interface WriteBatch {
  writes: Map<string, string | undefined>;
  done: Promise<void>;
  settle: (error?: Error) => void;
}

/** An object's lock read running, and the one that waits for it to end, for callers that came meanwhile. */
interface LockReads {
  running: Promise<DavLock[]>;
  queued: Promise<DavLock[]> | undefined;
}

const ignore = (): void => undefined;

/**
 * Locks and properties in etcd. Concurrent requests share round trips (ADR 87): a lock read
 * answers every caller of the same object that asked before it started (one who asks while it
 * runs waits for the next, which starts when it ends, so no caller gets an answer older than
 * its question), and property writes that arrive while a transaction is on its way go together
 * in the next one, each write answered once its transaction committed.
 */
export class DavState {
  readonly #etcd: Etcd3;
  readonly #lockReads = new Map<string, LockReads>();
  /** Write batches not committed yet; the first is on its way while #flushing runs. */
  readonly #batches: WriteBatch[] = [];
  #flushing: Promise<void> | undefined;

  constructor(etcd: Etcd3) {
    this.#etcd = etcd;
  }

  /** Every live lock of an object, as etcd holds them at some moment after this call (the array is shared: do not change it). */
  locks(objectId: string): Promise<DavLock[]> {
    const reads = this.#lockReads.get(objectId);
    if (reads === undefined) return this.#startLockRead(objectId);
    return (reads.queued ??= reads.running.then(ignore, ignore).then(() => this.#startLockRead(objectId)));
  }

  #startLockRead(objectId: string): Promise<DavLock[]> {
    const running = this.#readLocks(objectId);
    const reads: LockReads = { running, queued: undefined };
    this.#lockReads.set(objectId, reads);
    void running.then(ignore, ignore).then(() => {
      if (this.#lockReads.get(objectId) === reads) this.#lockReads.delete(objectId);
    });
    return running;
  }

  async #readLocks(objectId: string): Promise<DavLock[]> {
    const values = await this.#etcd.getAll().prefix(`${locksPrefix}${objectId}/`).strings();
    const now = Date.now();
    return Object.values(values)
      .map((v) => JSON.parse(v) as DavLock)
      .filter((l) => l.expiresAt > now);
  }

  /** Stores a new lock (or a refreshed one) under a lease of its timeout. */
  async putLock(lock: Omit<DavLock, 'token' | 'expiresAt'> & { token?: string }): Promise<DavLock> {
    const stored: DavLock = {
      ...lock,
      token: lock.token ?? `opaquelocktoken:${randomUUID()}`,
      expiresAt: Date.now() + lock.timeoutSeconds * 1000,
    };
    const lease = this.#etcd.lease(lock.timeoutSeconds, { autoKeepAlive: false });
    await lease.put(lockKey(lock.objectId, stored.token)).value(JSON.stringify(stored));
    lease.release();
    return stored;
  }

  async deleteLock(lock: DavLock): Promise<void> {
    await this.#etcd.delete().key(lockKey(lock.objectId, lock.token));
  }

  /** Drops the locks taken on `path` or below it (after a delete or a move away). */
  async deleteLocksWithin(objectId: string, path: string): Promise<void> {
    for (const lock of await this.locks(objectId)) if (isWithin(lock.root, path)) await this.deleteLock(lock);
  }

  /** The stored properties of one resource. */
  async props(objectId: string, path: string): Promise<StoredProps> {
    const value = await this.#etcd.get(propsKey(objectId, path)).string();
    return value === null ? { dead: {} } : (JSON.parse(value) as StoredProps);
  }

  /** The stored properties of the resources directly below `dir` and of `dir`, by path. */
  async propsBelow(objectId: string, dir: string): Promise<Map<string, StoredProps>> {
    const prefix = propsKey(objectId, dir === '' ? '' : `${dir}/`);
    const values = await this.#etcd.getAll().prefix(prefix).strings();
    const out = new Map<string, StoredProps>();
    for (const [key, value] of Object.entries(values)) {
      out.set(decodeURIComponent(key.slice(propsPrefix.length + objectId.length + 1)), JSON.parse(value) as StoredProps);
    }
    out.set(dir, await this.props(objectId, dir));
    return out;
  }

  /** Stores a resource's properties (none: removes them); answers once they are committed, with other writes of the moment. */
  setProps(objectId: string, path: string, props: StoredProps): Promise<void> {
    const empty = Object.keys(props.dead).length === 0 && props.sums === undefined;
    return this.#write(propsKey(objectId, path), empty ? undefined : JSON.stringify(props));
  }

  #write(key: string, value: string | undefined): Promise<void> {
    // The last batch takes it unless it is on its way (the first while flushing) or full.
    let batch = this.#batches.at(-1);
    const sending = this.#flushing !== undefined && this.#batches.length === 1;
    if (batch === undefined || sending || (batch.writes.size >= maxBatchedWrites && !batch.writes.has(key))) {
      let settle!: (error?: Error) => void;
      const done = new Promise<void>((resolve, reject) => {
        settle = (error) => (error === undefined ? resolve() : reject(error));
      });
      batch = { writes: new Map(), done, settle };
      this.#batches.push(batch);
    }
    // A later write of the same key replaces the earlier one: one transaction may name a key once.
    batch.writes.set(key, value);
    this.#flushing ??= this.#flush();
    return batch.done;
  }

  async #flush(): Promise<void> {
    for (let batch = this.#batches[0]; batch !== undefined; batch = this.#batches[0]) {
      try {
        const ops = [...batch.writes].map(([key, value]) =>
          value === undefined ? this.#etcd.delete().key(key) : this.#etcd.put(key).value(value),
        );
        // Nothing to compare: a comparison that always holds.
        await this.#etcd
          .if(propsPrefix, 'Mod', '!=', -1)
          .then(...ops)
          .commit();
        batch.settle();
      } catch (err) {
        batch.settle(err instanceof Error ? err : new Error('the properties were not stored', { cause: err }));
      }
      this.#batches.shift();
    }
    this.#flushing = undefined;
  }

  /** Waits until the property writes made so far are committed (or failed). */
  async #settled(): Promise<void> {
    await Promise.allSettled(this.#batches.map((b) => b.done));
  }

  /** Drops the properties of `path` and everything below it. */
  async deletePropsWithin(objectId: string, path: string): Promise<void> {
    // After any write of them on its way, so that it cannot land after the delete.
    await this.#settled();
    await this.#etcd.delete().key(propsKey(objectId, path));
    await this.#etcd.delete().prefix(propsKey(objectId, path === '' ? '' : `${path}/`));
  }

  /** Copies the properties of `from` and below to `to` (a COPY or MOVE), the checksums included. */
  async copyProps(fromObject: string, from: string, toObject: string, to: string): Promise<void> {
    const entries = new Map<string, StoredProps>();
    const own = await this.props(fromObject, from);
    if (Object.keys(own.dead).length > 0 || own.sums !== undefined) entries.set(to, own);
    const prefix = propsKey(fromObject, from === '' ? '' : `${from}/`);
    const values = await this.#etcd.getAll().prefix(prefix).strings();
    for (const [key, value] of Object.entries(values)) {
      const path = decodeURIComponent(key.slice(propsPrefix.length + fromObject.length + 1));
      const rest = from === '' ? path : path.slice(from.length + 1);
      entries.set(to === '' ? rest : `${to}/${rest}`, JSON.parse(value) as StoredProps);
    }
    for (const [path, props] of entries) await this.setProps(toObject, path, props);
  }
}
