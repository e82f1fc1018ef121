// The slot map in etcd: one owner record per replica of each partition (its slot ranges and
// advertise URL), held under the process's lease. The replicas of a partition are symmetric and
// all serve its slots; each fences its writes on its own record's revision, so a process that
// was paused while its lease lapsed, or that a newer process of the same replica (the same pod
// name) replaced, cannot commit. Keyed by replica rather than by partition so that replicas do
// not fence each other.
//
// A lease that lapses because etcd could not be reached is not the end of ownership (ADR 8: a
// store outage must not make every process exit at once): once etcd answers again, the process
// claims its slots afresh under a new lease and moves its fence to the new record, unless it
// finds that another process took them meanwhile (a newer record of the same replica, or
// another partition claiming some of the slots). Writes are suspended while it does.
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { MeshworkError, slotOfOwnerKey, slotOwnerPrefix, type SlotMapRecord } from '@meshwork/contract';
import type { Etcd3, IKeyValue, Lease } from 'etcd3';
import type { Logger } from 'pino';
import { formatSlotRanges, parseSlotRanges, rangesContain, type SlotRange } from '../slots.ts';
import { slotMapKey, slotMapPrefix } from '../stores/keys.ts';

/** A partition's owner record; its shape is the contract the gateway reads. */
export type { SlotMapRecord };

/** Raised when another live partition already claims some of our slots. */
export class SlotConflictError extends Error {
  override readonly name = 'SlotConflictError';
}

/** Raised when another process took this replica's slots: a newer record of the replica, or another partition's claim. */
export class SlotsTakenError extends MeshworkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('slots_taken', message, options);
  }
}

/** Why ownership was suspended when a newly granted lease was lost before it was in use. */
export class SlotLeaseLostError extends MeshworkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('slot_lease_lost', message, options);
  }
}

/** The default lease TTL of an owner record: a dead process's claim lapses after this long. */
export const ownerLeaseSeconds = 10;
// Looking up an owner for a 421 may use a map this old; a miss refreshes it at once.
const cacheMillis = 2000;
// Re-acquiring retries etcd this often at most, and backs off to this.
const reacquireRetryMs = { first: 200, max: 2000 };

/** The owner record's key and the revision this process wrote it at: every metadata write compares it. */
export interface Fence {
  key: string;
  revision: number;
}

/** What the slot map tells its process about ownership after registration. */
export interface OwnershipHooks {
  /** The lease lapsed (or the fence moved): writes must stop until `onReacquired`. */
  onSuspended(reason: Error): void;
  /** Ownership is held again, fenced on a new record. */
  onReacquired(fence: Fence): void;
  /** Another process took the slots: the process must stop serving. */
  onTaken(err: SlotsTakenError): void;
}

interface Claim {
  partition: string;
  replica: string;
  slots: SlotRange[];
  url: string;
  instance: string;
  key: string;
  hooks: OwnershipHooks;
}

/** Registration of this process's slots, and lookups of the owners of other slots. */
export class SlotMap {
  readonly #etcd: Etcd3;
  readonly #logger: Logger;
  readonly #leaseSeconds: number;
  #lease: Lease | undefined;
  #renewedAt = 0;
  #cache: { at: number; records: SlotMapRecord[] } | undefined;
  #claim: Claim | undefined;
  #fence: Fence | undefined;
  // Set while ownership is being re-acquired: why it was suspended, and the loop doing it.
  #suspended: { reason: Error; done: Promise<void> } | undefined;
  #released = false;

  constructor(etcd: Etcd3, logger: Logger, leaseSeconds = ownerLeaseSeconds) {
    this.#etcd = etcd;
    this.#logger = logger;
    this.#leaseSeconds = leaseSeconds;
  }

  /**
   * Claims `slots` for one replica of `partition` under a lease and returns the owner record's
   * key and revision (the fence). `hooks` hear of a lapse, a re-acquisition and a takeover later.
   */
  async register(partition: string, replica: string, slots: SlotRange[], url: string, hooks: OwnershipHooks): Promise<Fence> {
    const conflict = await this.#conflictingClaim(partition, slots);
    if (conflict) throw new SlotConflictError(conflict);
    const claim: Claim = { partition, replica, slots, url, instance: randomUUID(), key: slotMapKey(partition, replica), hooks };
    this.#claim = claim;
    let fence: Fence | undefined;
    while (fence === undefined) {
      // A record of an earlier process of this replica is replaced: the newest process owns the slots.
      const seen = (await this.#etcd.get(claim.key).exec()).kvs[0];
      fence = await this.#writeRecord(claim, seen);
    }
    this.#logger.info(
      { partition, replica, slots: formatSlotRanges(slots), url, revision: fence.revision },
      'Registered the replica in the slot map',
    );
    return fence;
  }

  /** Whether this process holds its claim: not being re-acquired, the lease exists and was renewed within its TTL. */
  leaseStatus(): { ok: boolean; error?: string } {
    if (this.#suspended) return { ok: false, error: `re-acquiring the slots: ${this.#suspended.reason.message}` };
    const lease = this.#lease;
    if (lease === undefined) return { ok: false, error: 'no slots claimed' };
    if (lease.revoked()) return { ok: false, error: 'the slot lease was lost' };
    const age = Date.now() - this.#renewedAt;
    if (age > this.#leaseSeconds * 1000) return { ok: false, error: `the slot lease was last renewed ${Math.round(age / 1000)} s ago` };
    return { ok: true };
  }

  /**
   * Checks the claim after a write found the fence moved: a stale fence (ownership was
   * re-acquired meanwhile) is nothing; a lapsed record is re-acquired; a record another
   * process wrote is a takeover (`onTaken`). Resolves once that is settled.
   */
  async verifyOwnership(cause: Error): Promise<void> {
    this.#startReacquiring(cause);
    await this.#suspended?.done;
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
    const find = (records: SlotMapRecord[]): SlotMapRecord | undefined =>
      records.find((r) => rangesContain(parseSlotRanges(r.slots), slot));
    if (this.#cache && Date.now() - this.#cache.at < cacheMillis) {
      const hit = find(this.#cache.records);
      if (hit) return hit;
    }
    return find(await this.list());
  }

  /** A record of a replica of `partition`, if any: where to send a client of a slot whose owner key names it. */
  async memberOf(partition: string): Promise<SlotMapRecord | undefined> {
    if (this.#cache && Date.now() - this.#cache.at < cacheMillis) {
      const hit = this.#cache.records.find((r) => r.partition === partition);
      if (hit) return hit;
    }
    return (await this.list()).find((r) => r.partition === partition);
  }

  /** Gives up the claim (on clean shutdown), so the next owner need not wait for the lease. */
  async release(): Promise<void> {
    this.#released = true;
    const lease = this.#lease;
    this.#lease = undefined;
    if (lease && !lease.revoked()) await lease.revoke();
  }

  /**
   * Another partition's live claim on some of `slots`, described; undefined when there is none.
   * Slots that have an owner key do not count: their key, not the claims, says who serves them
   * (ADR 34), so a partition created for a new layout starts beside the owners of its ranges.
   */
  async #conflictingClaim(partition: string, slots: SlotRange[]): Promise<string | undefined> {
    const records = await this.list();
    const keyed = new Set<number>();
    for (const key of await this.#etcd.getAll().prefix(slotOwnerPrefix).keys()) {
      const slot = slotOfOwnerKey(key);
      if (slot !== undefined) keyed.add(slot);
    }
    for (const other of records) {
      if (other.partition === partition) continue;
      const theirs = parseSlotRanges(other.slots);
      const overlap = slots.some((r) =>
        theirs.some((t) => {
          for (let slot = Math.max(r.first, t.first); slot <= Math.min(r.last, t.last); slot++) if (!keyed.has(slot)) return true;
          return false;
        }),
      );
      if (overlap) return `slots ${formatSlotRanges(slots)} overlap ${other.slots} owned by partition ${other.partition} at ${other.url}`;
    }
    return undefined;
  }

  /**
   * Writes the owner record under a new lease if the key is still as last seen (`seen`:
   * undefined for absent), and makes that lease the current one. Undefined when the key changed.
   */
  async #writeRecord(claim: Claim, seen: IKeyValue | undefined): Promise<Fence | undefined> {
    const lease = this.#etcd.lease(this.#leaseSeconds);
    // Heard only once this lease is the current one (see adoptLease).
    lease.on('keepaliveSucceeded', () => {
      if (this.#lease === lease) this.#renewedAt = Date.now();
    });
    lease.on('lost', (err: Error) => {
      if (this.#lease !== lease || this.#released) return;
      this.#logger.warn({ err }, 'Lost the slot lease; re-acquiring the slots once etcd answers');
      this.#startReacquiring(err);
    });
    const record: SlotMapRecord = {
      partition: claim.partition,
      replica: claim.replica,
      slots: formatSlotRanges(claim.slots),
      url: claim.url,
      instance: claim.instance,
      registeredAt: new Date().toISOString(),
    };
    try {
      const leaseId = await lease.grant();
      const res = await this.#etcd
        .if(claim.key, 'Mod', '==', seen === undefined ? 0 : Number(seen.mod_revision))
        .then(this.#etcd.put(claim.key).value(JSON.stringify(record)).lease(leaseId))
        .commit();
      if (!res.succeeded) {
        await lease.revoke();
        return undefined;
      }
      const fence = { key: claim.key, revision: Number(res.header.revision) };
      this.#adoptLease(lease);
      this.#fence = fence;
      this.#cache = undefined;
      return fence;
    } catch (err) {
      this.#dropLease(lease);
      throw err;
    }
  }

  #adoptLease(lease: Lease): void {
    const previous = this.#lease;
    this.#lease = lease;
    this.#renewedAt = Date.now();
    // The lease this one replaces holds no key any more.
    if (previous) this.#dropLease(previous);
  }

  /** Stops renewing a lease and revokes it; if etcd does not hear the revocation, the lease lapses by itself. */
  #dropLease(lease: Lease): void {
    if (lease.revoked()) return;
    lease.revoke().catch((err: unknown) => this.#logger.debug({ err }, 'Failed to revoke a slot lease no longer used; it will lapse'));
  }

  #startReacquiring(reason: Error): void {
    const claim = this.#claim;
    if (claim === undefined || this.#released || this.#suspended) return;
    claim.hooks.onSuspended(reason);
    const done = this.#reacquire(claim).then(
      (fence) => {
        this.#suspended = undefined;
        if (fence) claim.hooks.onReacquired(fence);
        // Lost again between its grant and now: the loss was ignored while it was not current.
        if (this.#lease?.revoked()) this.#startReacquiring(new SlotLeaseLostError('the new slot lease was lost as soon as it was granted'));
      },
      (err: unknown) => {
        this.#suspended = undefined;
        if (err instanceof SlotsTakenError) claim.hooks.onTaken(err);
        else throw err;
      },
    );
    this.#suspended = { reason, done };
  }

  /**
   * Retries until etcd answers, then settles the claim: the fence to write on from now (the
   * current one when it still stands: the alarm came from a write with an older fence; a new
   * record's otherwise), or SlotsTakenError. Undefined when the claim was released meanwhile.
   */
  async #reacquire(claim: Claim): Promise<Fence | undefined> {
    let wait = reacquireRetryMs.first;
    for (let attempt = 1; ; attempt++) {
      if (this.#released) return undefined;
      try {
        const previous = this.#fence;
        const fence = await this.#settleClaim(claim);
        if (fence !== previous)
          this.#logger.info({ key: claim.key, revision: fence.revision, attempts: attempt }, 'Re-acquired the slots under a new lease');
        return fence;
      } catch (err) {
        if (err instanceof SlotsTakenError) throw err;
        if (attempt === 1) this.#logger.warn({ err }, 'Failed to reach etcd to re-acquire the slots; retrying');
        await delay(wait);
        wait = Math.min(reacquireRetryMs.max, wait * 2);
      }
    }
  }

  async #settleClaim(claim: Claim): Promise<Fence> {
    for (;;) {
      const kv = (await this.#etcd.get(claim.key).exec()).kvs[0];
      if (kv !== undefined) {
        const theirs = JSON.parse(kv.value.toString('utf8')) as SlotMapRecord;
        if (theirs.instance !== claim.instance) {
          throw new SlotsTakenError(
            `the owner record ${claim.key} now belongs to a newer process of replica ${claim.replica} (instance ${theirs.instance})`,
          );
        }
        const lease = this.#lease;
        const fence = this.#fence;
        // Ours, at the fence, under the live lease: the write that raised the alarm used an older fence.
        if (fence && Number(kv.mod_revision) === fence.revision && lease && !lease.revoked() && kv.lease === (await lease.grant()))
          return fence;
      }
      const conflict = await this.#conflictingClaim(claim.partition, claim.slots);
      if (conflict) throw new SlotsTakenError(conflict);
      const fence = await this.#writeRecord(claim, kv);
      if (fence) return fence;
      // The key changed between the read and the write: look again.
    }
  }
}
