// The slot map as etcd holds it, which the partition writes and the gateway watches: one owner
// record per replica of each partition under one key prefix, and the bearer token's shape, from
// which the gateway reads the caller's id to route a request to the caller's slot without a
// store read (a user's devices are minted in the user's slot, so a device id routes there too).

import { parseSlotRanges } from './slots.ts';

/**
 * The etcd prefix of the slot map: `/mw/slotmap/{partition}/{replica}`, each record held under
 * its replica's lease. The data plane writes it; the gateway routes by it, and the operator's
 * watchdog reads whether a member's lease is alive (etcd deletes the record when it expires).
 */
export const slotMapPrefix = '/mw/slotmap/';

/** A partition replica's owner record (JSON under `slotMapPrefix`, held under the replica's lease). */
export interface SlotMapRecord {
  partition: string;
  /** The replica (pod name) within the partition. */
  replica: string;
  /** The slot ranges, in the text form of `formatSlotRanges`. */
  slots: string;
  /** Where the replica serves the API. */
  url: string;
  /** Random per process start, so a restart is told apart from the process before it. */
  instance: string;
  registeredAt: string;
}

/** Whose token an `Authorization` header carries: the user (`mwu.`) or device (`mwd.`) id; undefined for any other header. */
export function bearerSubject(header: string | undefined): { kind: 'user' | 'device'; id: string } | undefined {
  if (header === undefined) return undefined;
  const token = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
  const match = token === undefined ? null : /^(mwu|mwd)\.([A-Za-z0-9_-]{1,64})\.[A-Za-z0-9_-]{43}$/.exec(token);
  if (!match) return undefined;
  return { kind: match[1] === 'mwu' ? 'user' : 'device', id: match[2]! };
}

/**
 * The etcd prefix of the per-slot owner keys (ADR 34): `/mw/own/{slot}` (four digits) holds a
 * `SlotOwnerRecord`. Once a slot has an owner key, that key alone says which partition serves
 * it; a slot without one is served by the partition whose owner record claims it. The operator
 * moves a slot by a compare-and-swap on its key; every metadata write a request makes in its slot
 * compares the key's revision (the slot's fence).
 */
export const slotOwnerPrefix = '/mw/own/';

/** Who owns a slot: the partition, and an epoch raised by one at every move. */
export interface SlotOwnerRecord {
  partition: string;
  epoch: number;
}

/** The owner key of `slot`. */
export function slotOwnerKey(slot: number): string {
  return `${slotOwnerPrefix}${String(slot).padStart(4, '0')}`;
}

/** The slot an owner key names; undefined for any other key. */
export function slotOfOwnerKey(key: string): number | undefined {
  const match = /^\/mw\/own\/(\d{4})$/.exec(key);
  if (!match) return undefined;
  const slot = Number(match[1]);
  return slot < 4096 ? slot : undefined;
}

/** Parses an owner key's value; undefined when it is not a `SlotOwnerRecord`. */
export function parseSlotOwnerRecord(text: string): SlotOwnerRecord | undefined {
  try {
    const value = JSON.parse(text) as Partial<SlotOwnerRecord>;
    if (typeof value.partition !== 'string' || value.partition === '') return undefined;
    if (typeof value.epoch !== 'number' || !Number.isInteger(value.epoch) || value.epoch < 0) return undefined;
    return { partition: value.partition, epoch: value.epoch };
  } catch {
    return undefined;
  }
}

/** The slots an owner record claims, lowest first; none when its ranges do not parse. */
export function parseSlotMapRecordSlots(record: Pick<SlotMapRecord, 'slots'>): number[] {
  try {
    return parseSlotRanges(record.slots).flatMap((r) => Array.from({ length: r.last - r.first + 1 }, (_, i) => r.first + i));
  } catch {
    return [];
  }
}
