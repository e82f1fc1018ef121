// The slot map in etcd: one owner record per replica of each partition (its slot ranges and
// advertise URL), held under the process's lease. The replicas of a partition are symmetric and
// all serve its slots; each fences its writes on its own record's revision, so a process that
// was paused while its lease lapsed, or that a newer process of the same replica (the same pod
// name) replaced, cannot commit. Keyed by replica rather than by partition so that replicas do
// not fence each other.
import { randomUUID } from 'node:crypto';
import type { Etcd3, Lease } from 'etcd3';
import type { Logger } from 'pino';
import { formatSlotRanges, parseSlotRanges, rangesContain, type SlotRange } from '../slots.ts';
import { slotMapKey, slotMapPrefix } from '../stores/keys.ts';

/** A partition's owner record. */
export interface SlotMapRecord {
  partition: string;
  /** The replica (pod name) within the partition. */
  replica: string;
  slots: string;
  url: string;
  /** Random per process start, so a restart is told apart from the process before it. */
  instance: string;
  registeredAt: string;
}

/** Raised when another live partition already claims some of our slots. */
export class SlotConflictError extends Error {
  override readonly name = 'SlotConflictError';
}

/** The lease TTL of an owner record: a dead process's claim lapses after this long. */
export const ownerLeaseSeconds = 10;
// Looking up an owner for a 421 may use a map this old; a miss refreshes it at once.
const cacheMillis = 2000;

/** Registration of this process's slots, and lookups of the owners of other slots. */
export class SlotMap {
  readonly #etcd: Etcd3;
  readonly #logger: Logger;
  #lease: Lease | undefined;
  #renewedAt = 0;
  #cache: { at: number; records: SlotMapRecord[] } | undefined;

  constructor(etcd: Etcd3, logger: Logger) {
    this.#etcd = etcd;
    this.#logger = logger;
  }

  /**
   * Claims `slots` for one replica of `partition` under a lease and returns the owner record's
   * key and revision (the fence). `onLost` runs if the lease is lost later.
   */
  async register(partition: string, replica: string, slots: SlotRange[], url: string, onLost: (err: Error) => void): Promise<{ key: string; revision: number }> {
    for (const other of await this.list()) {
      if (other.partition === partition) continue;
      const theirs = parseSlotRanges(other.slots);
      const overlap = slots.some((r) => theirs.some((t) => r.first <= t.last && t.first <= r.last));
      if (overlap) {
        throw new SlotConflictError(`slots ${formatSlotRanges(slots)} overlap ${other.slots} owned by partition ${other.partition} at ${other.url}`);
      }
    }
    const lease = this.#etcd.lease(ownerLeaseSeconds);
    lease.on('lost', (err) => onLost(err));
    lease.on('keepaliveSucceeded', () => {
      this.#renewedAt = Date.now();
    });
    this.#lease = lease;
    const record: SlotMapRecord = { partition, replica, slots: formatSlotRanges(slots), url, instance: randomUUID(), registeredAt: new Date().toISOString() };
    const key = slotMapKey(partition, replica);
    const res = await lease.put(key).value(JSON.stringify(record)).exec();
    this.#renewedAt = Date.now();
    this.#cache = undefined;
    this.#logger.info({ partition, replica, slots: record.slots, url, revision: res.header.revision }, 'Registered the replica in the slot map');
    return { key, revision: Number(res.header.revision) };
  }

  /** Whether this process holds its claim: the lease exists and was renewed within its TTL. */
  leaseStatus(): { ok: boolean; error?: string } {
    const lease = this.#lease;
    if (lease === undefined) return { ok: false, error: 'no slots claimed' };
    if (lease.revoked()) return { ok: false, error: 'the slot lease was lost' };
    const age = Date.now() - this.#renewedAt;
    if (age > ownerLeaseSeconds * 1000) return { ok: false, error: `the slot lease was last renewed ${Math.round(age / 1000)} s ago` };
    return { ok: true };
  }

  /** Every owner record in the slot map. */
  async list(): Promise<SlotMapRecord[]> {
    const res = await this.#etcd.getAll().prefix(slotMapPrefix).exec();
    const records = res.kvs.map((kv) => JSON.parse(kv.value.toString('utf8')) as SlotMapRecord);
    this.#cache = { at: Date.now(), records };
    return records;
  }

  /** The record of the partition that owns `slot`, if any. */
  async ownerOf(slot: number): Promise<SlotMapRecord | undefined> {
    const find = (records: SlotMapRecord[]): SlotMapRecord | undefined => records.find((r) => rangesContain(parseSlotRanges(r.slots), slot));
    if (this.#cache && Date.now() - this.#cache.at < cacheMillis) {
      const hit = find(this.#cache.records);
      if (hit) return hit;
    }
    return find(await this.list());
  }

  /** Gives up the claim (on clean shutdown), so the next owner need not wait for the lease. */
  async release(): Promise<void> {
    const lease = this.#lease;
    this.#lease = undefined;
    if (lease && !lease.revoked()) await lease.revoke();
  }
}
