// The slot map in etcd: one owner record per partition (its slot ranges and advertise URL),
// held under a lease. The record's revision is the fence every metadata write checks.
import { randomUUID } from 'node:crypto';
import type { Etcd3, Lease } from 'etcd3';
import type { Logger } from 'pino';
import { formatSlotRanges, parseSlotRanges, rangesContain, type SlotRange } from '../slots.ts';
import { slotMapKey, slotMapPrefix } from '../stores/keys.ts';

/** A partition's owner record. */
export interface SlotMapRecord {
  partition: string;
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
   * Claims `slots` for `partition` under a lease and returns the owner record's key and
   * revision (the fence). `onLost` runs if the lease is lost later.
   */
  async register(partition: string, slots: SlotRange[], url: string, onLost: (err: Error) => void): Promise<{ key: string; revision: number }> {
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
    const record: SlotMapRecord = { partition, slots: formatSlotRanges(slots), url, instance: randomUUID(), registeredAt: new Date().toISOString() };
    const res = await lease.put(slotMapKey(partition)).value(JSON.stringify(record)).exec();
    this.#renewedAt = Date.now();
    this.#cache = undefined;
    this.#logger.info({ partition, slots: record.slots, url, revision: res.header.revision }, 'Registered partition in the slot map');
    return { key: slotMapKey(partition), revision: Number(res.header.revision) };
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
