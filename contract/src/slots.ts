// The fixed slot space and the text form of slot ranges (`0-1023,2048-2100,4000`): the operator
// writes a partition's ranges in this form into its pods' environment and status, and the data
// plane reads them back, so writer and reader live together here.
import { MeshworkError } from './errors.ts';

/** Number of slots; fixed for the life of a mesh, since keys are prefixed by slot. */
export const slotCount = 4096;

/** An inclusive range of slots. */
export interface SlotRange {
  first: number;
  last: number;
}

/** Raised for a slot-range list that does not parse or leaves the slot space. */
export class SlotRangeError extends MeshworkError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid_slot_range', message, options);
  }
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

/** Formats ranges in the "0-1023,2048" form, lowest first (a single slot as `7`). */
export function formatSlotRanges(ranges: readonly SlotRange[]): string {
  return [...ranges]
    .sort((a, b) => a.first - b.first)
    .map((r) => (r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`))
    .join(',');
}
