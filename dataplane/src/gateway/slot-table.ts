// The gateway's view of the slot map: which partition owns each of the 4096 slots and which
// replicas (members) serve it, built from the owner records the partitions keep in etcd. Pure:
// the watch (slot-watch.ts) feeds it records and swaps in a new table on every change, so a
// request reads an array and never a store.
import { formatSlotRanges, parseSlotRanges, slotCount, type SlotMapRecord, type SlotOwnerRecord, type SlotRange } from '@meshwork/contract';

/** One replica of a partition, as the slot map names it. */
export interface Member {
  partition: string;
  replica: string;
  url: string;
}

/** A partition: its name and its members, in a stable order. */
export interface PartitionView {
  name: string;
  members: readonly Member[];
}

/** An owner record and the etcd revision it was written at (a newer claim on a slot wins). */
export interface RevisionedRecord {
  record: SlotMapRecord;
  revision: number;
}

/** The slot map as the gateway routes by it. */
export class SlotTable {
  /** The partitions, by name. */
  readonly partitions: ReadonlyMap<string, PartitionView>;
  /** Every record the table was built from (for `GET /v1/slots`). */
  readonly records: readonly SlotMapRecord[];
  /** The partitions that own at least one slot, in name order: where a request for any partition goes (one that owns nothing could not create a user). */
  readonly owning: readonly PartitionView[];
  readonly #owners: (PartitionView | undefined)[];

  constructor(partitions: Map<string, PartitionView>, owners: (PartitionView | undefined)[], records: SlotMapRecord[]) {
    this.partitions = partitions;
    this.#owners = owners;
    this.records = records;
    this.owning = [...new Set(owners.filter((p) => p !== undefined))].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The partition that owns `slot`, if any. */
  ownerOf(slot: number): PartitionView | undefined {
    return this.#owners[slot];
  }

  /** The slots each partition serves, in the `0-1023,2048` form (for `GET /v1/slots`). */
  served(): Record<string, string> {
    const slots = new Map<string, number[]>();
    this.#owners.forEach((p, slot) => {
      if (p === undefined) return;
      const list = slots.get(p.name);
      if (list) list.push(slot);
      else slots.set(p.name, [slot]);
    });
    const ranges = (list: number[]): string =>
      formatSlotRanges(
        list.reduce<SlotRange[]>((acc, slot) => {
          const last = acc.at(-1);
          if (last !== undefined && last.last === slot - 1) last.last = slot;
          else acc.push({ first: slot, last: slot });
          return acc;
        }, []),
      );
    return Object.fromEntries([...slots].sort(([a], [b]) => a.localeCompare(b)).map(([name, list]) => [name, ranges(list)]));
  }

  /** How many slots some partition owns. */
  get coveredSlots(): number {
    return this.#owners.reduce((n, p) => n + (p === undefined ? 0 : 1), 0);
  }
}

/**
 * Builds the table from owner records and the per-slot owner keys. Replicas of a partition
 * serve the same slots; when two partitions claim one slot, the claim written last wins: the
 * other answers 421 if it no longer owns it, and the gateway refreshes. A slot's owner key,
 * where it has one, overrides the claims (ADR 34: that is what the partitions serve by); a
 * slot whose key names a partition with no member has no owner. A record that does not parse
 * is left out.
 */
export function buildSlotTable(
  entries: readonly RevisionedRecord[],
  slotOwners: ReadonlyMap<number, SlotOwnerRecord> = new Map(),
): SlotTable {
  const sorted = [...entries].sort((a, b) => a.revision - b.revision);
  const partitions = new Map<string, { name: string; members: Member[] }>();
  const owners: (PartitionView | undefined)[] = new Array<PartitionView | undefined>(slotCount).fill(undefined);
  const records: SlotMapRecord[] = [];
  for (const { record } of sorted) {
    let ranges;
    try {
      ranges = parseSlotRanges(record.slots);
    } catch {
      continue;
    }
    if (typeof record.url !== 'string' || !/^https?:\/\//.test(record.url)) continue;
    records.push(record);
    let partition = partitions.get(record.partition);
    if (partition === undefined) {
      partition = { name: record.partition, members: [] };
      partitions.set(record.partition, partition);
    }
    partition.members.push({ partition: record.partition, replica: record.replica, url: record.url.replace(/\/+$/, '') });
    for (const r of ranges) for (let s = r.first; s <= r.last; s++) owners[s] = partition;
  }
  for (const [slot, owner] of slotOwners) owners[slot] = partitions.get(owner.partition);
  for (const p of partitions.values()) p.members.sort((a, b) => a.replica.localeCompare(b.replica));
  return new SlotTable(partitions, owners, records);
}
