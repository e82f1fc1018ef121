// The plan of an online rebalancing (ADR 34), pure: from the owner of every slot now and the
// partitions a Mesh should have, the moves `{slots, from, to}` that reach an even layout while
// moving as few slots as possible. A partition that stays keeps the lowest of its slots and
// gives away its highest; a new partition takes an equal share from each existing one rather
// than every range shifting (2 → 3 moves 1365 slots, not 2048). Each move is one chunk of at
// most `maxChunk` slots, so that its compare-and-swap fits one etcd transaction (128 operations:
// a compare and a put per slot) and a chunk's slots are unavailable for one swap only.
import { formatSlotRanges, slotCount, type SlotRange } from '@meshwork/contract';

/** The most slots one move carries: a compare and a put per slot within etcd's 128 operations per transaction. */
export const maxSlotsPerMove = 64;

/** One chunk of a rebalancing: every slot of `slots` goes from partition `from` to partition `to`. */
export interface SlotMove {
  from: string;
  to: string;
  slots: SlotRange[];
}

/** A rebalancing: the moves in the order to run them, and the owner of every slot once they have run. */
export interface MovePlan {
  moves: SlotMove[];
  target: string[];
}

/** Raised for a current layout the planner cannot start from (a slot without an owner). */
export class UnplannableLayoutError extends Error {
  override readonly name = 'UnplannableLayoutError';
}

/** Sorted slot numbers as ranges. */
export function slotsToRanges(slots: readonly number[]): SlotRange[] {
  const ranges: SlotRange[] = [];
  for (const slot of [...slots].sort((a, b) => a - b)) {
    const last = ranges.at(-1);
    if (last !== undefined && last.last === slot - 1) last.last = slot;
    else ranges.push({ first: slot, last: slot });
  }
  return ranges;
}

/** The slots of ranges, lowest first. */
export function rangesToSlots(ranges: readonly SlotRange[]): number[] {
  return ranges.flatMap((r) => Array.from({ length: r.last - r.first + 1 }, (_, i) => r.first + i));
}

/**
 * Plans the moves from `owners` (the partition of each of the 4096 slots) to an even layout over
 * `partitions` (names, in index order). Partitions not in `partitions` give away every slot.
 * Each partition's share is 4096 / n, the remainder going to the partitions that hold the most
 * now (so that they give away less); ties go to the earlier partition.
 */
export function planMoves(owners: readonly string[], partitions: readonly string[], maxChunk = maxSlotsPerMove): MovePlan {
  if (owners.length !== slotCount) throw new UnplannableLayoutError(`a layout has ${slotCount} slots, not ${owners.length}`);
  if (partitions.length === 0 || new Set(partitions).size !== partitions.length) {
    throw new UnplannableLayoutError('a plan needs at least one partition, each named once');
  }
  if (!Number.isInteger(maxChunk) || maxChunk < 1) throw new RangeError(`a chunk holds at least one slot, not ${maxChunk}`);
  const held = new Map<string, number[]>();
  owners.forEach((owner, slot) => {
    if (typeof owner !== 'string' || owner === '') throw new UnplannableLayoutError(`slot ${slot} has no owner`);
    const slots = held.get(owner);
    if (slots) slots.push(slot);
    else held.set(owner, [slot]);
  });

  const n = partitions.length;
  const base = Math.floor(slotCount / n);
  const byHolding = [...partitions].sort(
    (a, b) => (held.get(b)?.length ?? 0) - (held.get(a)?.length ?? 0) || partitions.indexOf(a) - partitions.indexOf(b),
  );
  const share = new Map(partitions.map((p) => [p, base]));
  for (const p of byHolding.slice(0, slotCount - base * n)) share.set(p, base + 1);

  // What each partition gives away (its highest slots), and what each still needs.
  const given: { from: string; slot: number }[] = [];
  for (const [owner, slots] of held) {
    const keep = share.get(owner) ?? 0;
    for (const slot of slots.slice(Math.min(keep, slots.length))) given.push({ from: owner, slot });
  }
  given.sort((a, b) => a.slot - b.slot);
  const needs = partitions.map((p) => ({ to: p, missing: Math.max(0, (share.get(p) ?? 0) - (held.get(p)?.length ?? 0)) }));

  const target = [...owners];
  const moves: SlotMove[] = [];
  let current: { from: string; to: string; slots: number[] } | undefined;
  const flush = (): void => {
    if (current) moves.push({ from: current.from, to: current.to, slots: slotsToRanges(current.slots) });
    current = undefined;
  };
  let receiver = 0;
  for (const { from, slot } of given) {
    while (needs[receiver]!.missing === 0) receiver++;
    const need = needs[receiver]!;
    need.missing--;
    target[slot] = need.to;
    if (current === undefined || current.from !== from || current.to !== need.to || current.slots.length === maxChunk) {
      flush();
      current = { from, to: need.to, slots: [] };
    }
    current.slots.push(slot);
  }
  flush();
  return { moves, target };
}

/** A move as one line of a log or a status: `64 slots 1366-1429 p0 → p2`. */
export function describeMove(move: SlotMove): string {
  const count = move.slots.reduce((n, r) => n + r.last - r.first + 1, 0);
  return `${count} slots ${formatSlotRanges(move.slots)} ${move.from} → ${move.to}`;
}
