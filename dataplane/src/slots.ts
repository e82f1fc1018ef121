// The fixed slot space: users, devices and mesh objects hash to one of 4096 slots, and each
// partition owns ranges of slots. The slot count and the text form of ranges are part of the
// contract with the operator, which writes them (@meshwork/contract, slots.ts).
import { crc32 } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { slotCount, type SlotRange } from '@meshwork/contract';

export { formatSlotRanges, parseSlotRanges, slotCount, SlotRangeError, type SlotRange } from '@meshwork/contract';

/** The slot an id (user, device or object) belongs to. */
export function slotOf(id: string): number {
  return crc32(id) % slotCount;
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
