// The owner of every slot of each Mesh, read from the owner keys in its etcd (ADR 34) every
// couple of seconds, in the background, so that a reconcile never waits on etcd. The Mesh's
// status counts coverage from these owners once its etcd holds owner keys (moves leave the
// partitions' specs behind); before any key exists, or when etcd was not read lately, the
// lookup says nothing and coverage is counted from the specs as before. A change of the
// owners queues the Meshes of that etcd.
import { Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import type { Mesh } from '../api/v1alpha1.ts';
import { readSlotOwners } from './slot-mover.ts';

/** How often each Mesh's etcd is read. */
export const ownerKeysPollMs = 2000;
/** After this long without a successful read, the owners are not known. */
const staleAfterMs = 6000;
/** Deadline of one read (and of dialling). */
const readTimeoutMs = 2000;

export interface MeshOwnerKeysOptions {
  log: Logger;
  /** Queues a Mesh (its `namespace/name`) when its owners changed. */
  enqueue: (key: string) => void;
  pollMs?: number;
  now?: () => number;
}

interface Store {
  client: Etcd3;
  meshes: Set<string>;
  /** The owners of the last read, when the etcd had owner keys; undefined while it has none. */
  owners?: string[];
  lastRead: number;
  reading: boolean;
}

function storeKey(mesh: Mesh): string {
  return [...mesh.spec.stores.etcd.endpoints].sort().join(',');
}

/** Reads the owner keys of the etcd clusters the Meshes use. */
export class MeshOwnerKeys {
  readonly #options: MeshOwnerKeysOptions;
  readonly #stores = new Map<string, Store>();
  readonly #meshStore = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;

  constructor(options: MeshOwnerKeysOptions) {
    this.#options = options;
  }

  /** Starts reading; only the leader reads. */
  start(): void {
    this.#timer ??= setInterval(() => this.#readAll(), this.#options.pollMs ?? ownerKeysPollMs);
    this.#timer.unref();
    this.#readAll();
  }

  /** Stops reading and closes the etcd clients. */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const store of this.#stores.values()) store.client.close();
    this.#stores.clear();
    this.#meshStore.clear();
  }

  /**
   * The owner of every slot of the Mesh (`''` for none) by its owner keys, when its etcd has
   * some and was read lately; undefined otherwise. Makes sure the Mesh's etcd is read from now on.
   */
  owners(key: string, mesh: Mesh): string[] | undefined {
    const wanted = storeKey(mesh);
    const current = this.#meshStore.get(key);
    if (current !== wanted) {
      if (current !== undefined) this.forget(key);
      let store = this.#stores.get(wanted);
      if (!store) {
        store = {
          client: new Etcd3({ hosts: mesh.spec.stores.etcd.endpoints, dialTimeout: readTimeoutMs }),
          meshes: new Set(),
          lastRead: -Infinity,
          reading: false,
        };
        this.#stores.set(wanted, store);
        this.#read(store);
      }
      store.meshes.add(key);
      this.#meshStore.set(key, wanted);
    }
    const store = this.#stores.get(wanted)!;
    return this.#now() - store.lastRead > staleAfterMs ? undefined : store.owners;
  }

  /** Stops reading for a deleted Mesh (and closes its etcd client when no Mesh uses it). */
  forget(key: string): void {
    const current = this.#meshStore.get(key);
    if (current === undefined) return;
    this.#meshStore.delete(key);
    const store = this.#stores.get(current);
    if (!store) return;
    store.meshes.delete(key);
    if (store.meshes.size === 0) {
      store.client.close();
      this.#stores.delete(current);
    }
  }

  #now(): number {
    return (this.#options.now ?? Date.now)();
  }

  #readAll(): void {
    for (const store of this.#stores.values()) this.#read(store);
  }

  #read(store: Store): void {
    if (store.reading) return;
    store.reading = true;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from etcd in ${readTimeoutMs} ms`)), readTimeoutMs);
    });
    Promise.race([readSlotOwners(store.client), deadline])
      .then(({ owners, keys }) => {
        const next = keys.size > 0 ? owners : undefined;
        const changed = next?.join(',') !== store.owners?.join(',');
        store.owners = next;
        store.lastRead = this.#now();
        if (changed) for (const key of store.meshes) this.#options.enqueue(key);
      })
      .catch((err: unknown) => this.#options.log.debug({ err }, 'Failed to read the owner keys'))
      .finally(() => {
        clearTimeout(timer);
        store.reading = false;
      });
  }
}
