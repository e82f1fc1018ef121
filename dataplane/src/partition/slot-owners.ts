// Which slots this partition serves, from the per-slot owner keys (ADR 34), watched. A slot
// with an owner key is served by the partition the key names; a slot without one by the
// partition whose configured ranges (its claim in the slot map) hold it, as before owner keys
// existed. The view also gives each admitted request its slot fence: the revision of the slot's
// owner key, which every metadata write of the request compares (slot-fence.ts), so that a view
// that lags a move by a few milliseconds can delay a refusal but never let a write through.
import {
  formatSlotRanges,
  parseSlotOwnerRecord,
  slotCount,
  slotOfOwnerKey,
  slotOwnerPrefix,
  type SlotOwnerRecord,
  type SlotRange,
} from '@meshwork/contract';
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import type { Logger } from 'pino';
import { rangesContain } from '../slots.ts';
import type { SlotFence } from '../stores/slot-fence.ts';

interface OwnerEntry {
  record: SlotOwnerRecord;
  revision: number;
}

/** Turns a per-slot "mine" flag into sorted ranges. */
export function rangesOf(mine: (slot: number) => boolean): SlotRange[] {
  const ranges: SlotRange[] = [];
  for (let slot = 0; slot < slotCount; slot++) {
    if (!mine(slot)) continue;
    const last = ranges.at(-1);
    if (last !== undefined && last.last === slot - 1) last.last = slot;
    else ranges.push({ first: slot, last: slot });
  }
  return ranges;
}

/** The owner keys as this process last saw them, and what they make it serve. */
export class SlotOwners {
  readonly #etcd: Etcd3;
  readonly #partition: string;
  readonly #claimed: readonly SlotRange[];
  readonly #logger: Logger;
  readonly #owners = new Map<number, OwnerEntry>();
  #watcher: Watcher | undefined;
  #ranges: SlotRange[] = [];
  #recomputeQueued = false;
  #stopped = false;

  constructor(etcd: Etcd3, partition: string, claimed: readonly SlotRange[], logger: Logger) {
    this.#etcd = etcd;
    this.#partition = partition;
    this.#claimed = claimed;
    this.#logger = logger;
    this.#ranges = [...claimed];
  }

  /** Lists the owner keys and watches them from the listing's revision on. */
  async start(): Promise<void> {
    const res = await this.#etcd.getAll().prefix(slotOwnerPrefix).exec();
    this.#owners.clear();
    for (const kv of res.kvs) this.#apply(kv, false);
    this.#recompute();
    const watcher = await this.#etcd
      .watch()
      .prefix(slotOwnerPrefix)
      .startRevision(String(Number(res.header.revision) + 1))
      .create();
    if (this.#stopped) {
      await watcher.cancel();
      return;
    }
    this.#watcher = watcher;
    watcher.on('put', (kv) => this.#apply(kv, false));
    watcher.on('delete', (kv) => this.#apply(kv, true));
    watcher.on('error', (err) => {
      // Typically compaction past a reconnect: what was missed is unknown, so list again. The
      // view may lag meanwhile; the fence keeps writes safe, a lagging view only delays a 421.
      if (this.#watcher !== watcher || this.#stopped) return;
      this.#logger.warn({ err }, 'Restarting the owner key watch after an error');
      this.#watcher = undefined;
      void watcher.cancel().catch(() => undefined);
      void this.#restart();
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#watcher?.cancel();
  }

  async #restart(): Promise<void> {
    for (let wait = 200; !this.#stopped; wait = Math.min(5000, wait * 2)) {
      try {
        await this.start();
        return;
      } catch (err) {
        this.#logger.warn({ err }, 'Failed to list the owner keys; retrying');
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  /** The slot fence of a request in `slot` if this partition serves it now; undefined if it does not. */
  fenceFor(slot: number): SlotFence | undefined {
    const entry = this.#owners.get(slot);
    if (entry !== undefined) return entry.record.partition === this.#partition ? { slot, revision: entry.revision } : undefined;
    return rangesContain(this.#claimed, slot) ? { slot, revision: 0 } : undefined;
  }

  /** Whether this partition serves `slot` now. */
  owns(slot: number): boolean {
    return this.fenceFor(slot) !== undefined;
  }

  /** The slots this partition serves now. */
  ranges(): readonly SlotRange[] {
    return this.#ranges;
  }

  /** The partition an owner key names for `slot`; undefined when the slot has none. */
  keyedOwner(slot: number): string | undefined {
    return this.#owners.get(slot)?.record.partition;
  }

  #apply(kv: IKeyValue, deleted: boolean): void {
    const slot = slotOfOwnerKey(kv.key.toString('utf8'));
    if (slot === undefined) return;
    const record = deleted ? undefined : parseSlotOwnerRecord(kv.value.toString('utf8'));
    if (record === undefined) this.#owners.delete(slot);
    else this.#owners.set(slot, { record, revision: Number(kv.mod_revision) });
    // A move of a chunk is one transaction, heard as one event per slot: the ranges once per batch.
    if (!this.#recomputeQueued && this.#watcher !== undefined) {
      this.#recomputeQueued = true;
      queueMicrotask(() => {
        this.#recomputeQueued = false;
        this.#recompute();
      });
    }
  }

  #recompute(): void {
    const before = formatSlotRanges(this.#ranges);
    this.#ranges = rangesOf((slot) => this.owns(slot));
    const after = formatSlotRanges(this.#ranges);
    if (after !== before) this.#logger.info({ slots: after, before }, 'Changed the slots served, from the owner keys');
  }
}
