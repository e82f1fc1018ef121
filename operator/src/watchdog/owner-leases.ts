// The members' owner leases, read from the slot map in etcd (ADR 29). Each data-plane replica
// keeps an owner record under its own lease; etcd deletes the record in the same revision the
// lease expires, so the record's presence is the lease's liveness, decided by etcd's clock
// alone. The watchdog reads every record of the etcd clusters its partitions use once a
// second and remembers, per replica, the last record seen and when it went missing. A lease
// that expired is the one safe moment to replace a member (the data plane cannot commit
// without it, ADR 15), and a lease still renewed says the process is alive whatever its node
// reports.
import { slotMapPrefix } from '@meshwork/contract';
import { Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import type { MeshPartition } from '../api/v1alpha1.ts';

/** How often the slot map is read. */
export const ownerLeasePollMs = 1000;
/** After this long without a successful read, nothing is known about the leases. */
const staleAfterMs = 3000;
/** Deadline of one read. */
const readTimeoutMs = 2000;

/** What the watchdog last saw of one replica's owner record. */
export interface OwnerRecordSighting {
  /** The record exists, so its lease is alive. */
  present: boolean;
  /** The advertise URL of the last record seen (it names the pod's address). */
  url: string;
  /** When the last record seen was written (ms, the writer's clock); NaN when no record was ever seen. */
  registeredAt: number;
  /** When this process first found the record missing (ms, its own clock). */
  goneAt?: number;
}

/** Read access to the sightings, for gathering a member's signals. */
export type OwnerLeaseLookup = (partition: MeshPartition, replica: string) => OwnerRecordSighting | undefined;

export interface OwnerLeasesOptions {
  log: Logger;
  /** Queues a partition for reconcile (its key) when one of its records appears or disappears. */
  enqueue: (key: string) => void;
  /** How long a record must stay missing before it counts as expired (a lapse the process re-acquires at once is not). */
  expiryGraceMs: number;
  now?: () => number;
  pollMs?: number;
}

interface Store {
  client: Etcd3;
  /** Partition keys (`namespace/name`) using this store, by partition name (the slot map's partition). */
  partitions: Map<string, Set<string>>;
  records: Map<string, OwnerRecordSighting>;
  lastRead: number;
  /** When the slot map was first read (ms); a replica without a record since holds no lease. */
  firstRead?: number;
  reading: boolean;
}

interface OwnerRecord {
  partition: string;
  replica: string;
  url: string;
  registeredAt: string;
}

function parseRecord(text: string): OwnerRecord | undefined {
  try {
    const r = JSON.parse(text) as Partial<OwnerRecord>;
    if (typeof r.partition !== 'string' || typeof r.replica !== 'string' || typeof r.url !== 'string') return undefined;
    return { partition: r.partition, replica: r.replica, url: r.url, registeredAt: String(r.registeredAt) };
  } catch {
    return undefined;
  }
}

function storeKey(partition: MeshPartition): string {
  return [...partition.spec.stores.etcd.endpoints].sort().join(',');
}

/** The slot maps of the etcd clusters the watched partitions use, read periodically. */
export class OwnerLeases {
  readonly #options: OwnerLeasesOptions;
  readonly #stores = new Map<string, Store>();
  /** Which store each partition key uses. */
  readonly #partitionStore = new Map<string, { store: string; name: string }>();
  #timer: NodeJS.Timeout | undefined;

  constructor(options: OwnerLeasesOptions) {
    this.#options = options;
  }

  /** Starts reading; only the leader reads. */
  start(): void {
    this.#timer ??= setInterval(() => this.#readAll(), this.#options.pollMs ?? ownerLeasePollMs);
    this.#timer.unref();
    this.#readAll();
  }

  /** Stops reading and closes the etcd clients. */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const store of this.#stores.values()) store.client.close();
    this.#stores.clear();
    this.#partitionStore.clear();
  }

  /** Makes sure the partition's etcd is read (called on every assessment). */
  watch(key: string, partition: MeshPartition): void {
    const wanted = { store: storeKey(partition), name: partition.metadata.name };
    const current = this.#partitionStore.get(key);
    if (current?.store === wanted.store && current.name === wanted.name) return;
    if (current) this.forget(key);
    let store = this.#stores.get(wanted.store);
    if (!store) {
      store = {
        client: new Etcd3({ hosts: partition.spec.stores.etcd.endpoints, dialTimeout: readTimeoutMs }),
        partitions: new Map(),
        records: new Map(),
        lastRead: -Infinity,
        reading: false,
      };
      this.#stores.set(wanted.store, store);
    }
    const keys = store.partitions.get(wanted.name) ?? new Set<string>();
    keys.add(key);
    store.partitions.set(wanted.name, keys);
    this.#partitionStore.set(key, wanted);
  }

  /** Stops reading for a deleted partition (and closes its etcd client when no partition uses it). */
  forget(key: string): void {
    const current = this.#partitionStore.get(key);
    if (!current) return;
    this.#partitionStore.delete(key);
    const store = this.#stores.get(current.store);
    if (!store) return;
    const keys = store.partitions.get(current.name);
    keys?.delete(key);
    if (keys?.size === 0) store.partitions.delete(current.name);
    if (store.partitions.size === 0) {
      store.client.close();
      this.#stores.delete(current.store);
    }
  }

  /**
   * What was last seen of a replica's record: undefined when nothing is known (etcd not read
   * lately); a replica never seen has had no record since the first read (`registeredAt` NaN,
   * `goneAt` that read), which says something only about a pod older than that read.
   */
  sighting(partition: MeshPartition, replica: string): OwnerRecordSighting | undefined {
    const store = this.#stores.get(storeKey(partition));
    if (!store || store.firstRead === undefined || this.#now() - store.lastRead > staleAfterMs) return undefined;
    return (
      store.records.get(`${partition.metadata.name}/${replica}`) ?? { present: false, url: '', registeredAt: NaN, goneAt: store.firstRead }
    );
  }

  #readAll(): void {
    for (const store of this.#stores.values()) {
      if (store.reading) continue;
      store.reading = true;
      this.#read(store)
        .catch((err: unknown) => this.#options.log.debug({ err }, 'Failed to read the slot map'))
        .finally(() => (store.reading = false));
    }
  }

  async #read(store: Store): Promise<void> {
    const res = await store.client
      .getAll()
      .prefix(slotMapPrefix)
      .options({ deadline: Date.now() + readTimeoutMs })
      .exec();
    const now = this.#now();
    const seen = new Set<string>();
    const changed = new Set<string>();
    for (const kv of res.kvs) {
      const record = parseRecord(kv.value.toString('utf8'));
      if (!record || !store.partitions.has(record.partition)) continue;
      const id = `${record.partition}/${record.replica}`;
      seen.add(id);
      const registeredAt = Date.parse(record.registeredAt);
      const before = store.records.get(id);
      if (before?.present && before.url === record.url && before.registeredAt === registeredAt) continue;
      store.records.set(id, { present: true, url: record.url, registeredAt: Number.isNaN(registeredAt) ? 0 : registeredAt });
      changed.add(record.partition);
    }
    for (const [id, sighting] of store.records) {
      const partition = id.slice(0, id.indexOf('/'));
      if (!store.partitions.has(partition)) {
        store.records.delete(id);
        continue;
      }
      if (seen.has(id) || !sighting.present) continue;
      store.records.set(id, { ...sighting, present: false, goneAt: now });
      changed.add(partition);
      this.#options.log.info({ partition, replica: id.slice(partition.length + 1) }, `Found the owner lease of ${id} expired`);
      // Looked at again once the grace has passed, when the record counts as expired.
      setTimeout(() => this.#enqueue(store, partition), this.#options.expiryGraceMs + 50).unref();
    }
    store.lastRead = now;
    store.firstRead ??= now;
    for (const partition of changed) this.#enqueue(store, partition);
  }

  #enqueue(store: Store, partition: string): void {
    for (const key of store.partitions.get(partition) ?? []) this.#options.enqueue(key);
  }

  #now(): number {
    return (this.#options.now ?? Date.now)();
  }
}
