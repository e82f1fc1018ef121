// The fixed slot space: users, devices and mesh objects hash to one of 4096 slots, and each
// partition owns ranges of slots.
import { crc32 } from 'node:zlib';
import { randomBytes } from 'node:crypto';

/** Number of slots; fixed for the life of a mesh, since keys are prefixed by slot. */
export const slotCount = 4096;

/** An inclusive range of slots. */
export interface SlotRange {
  first: number;
  last: number;
}

/** Raised for a slot-range list that does not parse or leaves the slot space. */
export class SlotRangeError extends Error {
  override readonly name = 'SlotRangeError';
}

/** The slot an id (user, device or object) belongs to. */
export function slotOf(id: string): number {
  return crc32(id) % slotCount;
}

/** Parses "0-1023,2048-2100,4000" into sorted, non-overlapping ranges. */
export function parseSlotRanges(text: string): SlotRange[] {
  const ranges: SlotRange[] = [];
  for (const part of text.split(',').map((p) => p.trim())) {
    const match = /^(\d{1,4})(?:-(\d{1,4}))?$/.exec(part);
    if (!match) throw new SlotRangeError(`"${part}" is not a slot or a range like 0-1023`);
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    if (last < first) throw new SlotRangeError(`"${part}" ends before it starts`);
    if (last >= slotCount) throw new SlotRangeError(`"${part}" leaves the slot space 0-${slotCount - 1}`);
    ranges.push({ first, last });
  }
  ranges.sort((a, b) => a.first - b.first);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i]!.first <= ranges[i - 1]!.last) {
      throw new SlotRangeError(`ranges ${formatSlotRanges([ranges[i - 1]!])} and ${formatSlotRanges([ranges[i]!])} overlap`);
    }
  }
  return ranges;
}

/** Formats ranges back into the "0-1023,2048" form. */
export function formatSlotRanges(ranges: readonly SlotRange[]): string {
  return ranges.map((r) => (r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`)).join(',');
}

/** Whether `slot` lies in one of `ranges`. */
export function rangesContain(ranges: readonly SlotRange[], slot: number): boolean {
  return ranges.some((r) => slot >= r.first && slot <= r.last);
}

/**
 * Mints a random id with `prefix` that hashes to `slot`, so that a user's devices and the
 * objects they create live in the user's slot and move with it.
 */
export function mintIdInSlot(prefix: string, slot: number): string {
  // crc32 spreads ids evenly, so this takes about 4096 tries (well under a millisecond).
  for (;;) {
    const batch = randomBytes(12 * 256);
    for (let i = 0; i < 256; i++) {
      const id = `${prefix}${batch.subarray(i * 12, i * 12 + 12).toString('base64url')}`;
      if (slotOf(id) === slot) return id;
    }
  }
}
