// The slot map as etcd holds it, which the partition writes and the gateway watches: one owner
// record per replica of each partition under one key prefix, and the bearer token's shape, from
// which the gateway reads the caller's id to route a request to the caller's slot without a
// store read (a user's devices are minted in the user's slot, so a device id routes there too).

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
