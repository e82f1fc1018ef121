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

/** Locks and properties in etcd. */
export class DavState {
  readonly #etcd: Etcd3;

  constructor(etcd: Etcd3) {
    this.#etcd = etcd;
  }

  /** Every live lock of an object. */
  async locks(objectId: string): Promise<DavLock[]> {
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

  async setProps(objectId: string, path: string, props: StoredProps): Promise<void> {
    if (Object.keys(props.dead).length === 0 && props.sums === undefined) await this.#etcd.delete().key(propsKey(objectId, path));
    else await this.#etcd.put(propsKey(objectId, path)).value(JSON.stringify(props));
  }

  /** Drops the properties of `path` and everything below it. */
  async deletePropsWithin(objectId: string, path: string): Promise<void> {
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
