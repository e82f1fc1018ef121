// The Mesh's slot layout, pure: which MeshPartitions a Mesh has and which contiguous slot range
// each serves. The reconciler (reconcile.ts) applies what `planPartitions` decides; nothing
// here reads the cluster or the clock (ADR 33).
import { slotCount, type SlotRange } from '@meshwork/contract';

/**
 * The slot space cut into `partitions` contiguous ranges, in order, whose sizes differ by at
 * most one slot (4096 over 3: 1365, 1365, 1366).
 */
export function evenSlotLayout(partitions: number): SlotRange[] {
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > slotCount) {
    throw new RangeError(`a layout needs 1 to ${slotCount} partitions, not ${partitions}`);
  }
  return Array.from({ length: partitions }, (_, i) => ({
    first: Math.floor((i * slotCount) / partitions),
    last: Math.floor(((i + 1) * slotCount) / partitions) - 1,
  }));
}

/** The name of a Mesh's partition number `index` (from 0). */
export function meshPartitionName(mesh: string, index: number): string {
  return `${mesh}-p${index}`;
}

/** One partition of the layout: its name and the slots it is given. */
export interface PlannedPartition {
  name: string;
  index: number;
  slots: SlotRange;
}

/** What the reconciler should make of the partitions it owns. */
export interface PartitionPlan {
  /** The layout's partitions, to apply (created, or re-laid when their slots changed). */
  keep: PlannedPartition[];
  /** Partitions the Mesh owns that the layout no longer has (after `partitions` went down), to delete. */
  remove: string[];
}

/** The partitions a Mesh named `mesh` should have, given the names of those it owns now. */
export function planPartitions(mesh: string, partitions: number, owned: readonly string[]): PartitionPlan {
  const keep = evenSlotLayout(partitions).map((slots, index) => ({ name: meshPartitionName(mesh, index), index, slots }));
  const wanted = new Set(keep.map((p) => p.name));
  return { keep, remove: owned.filter((name) => !wanted.has(name)).sort() };
}

/**
 * How many of the slot space's slots lie in exactly one of `ranges`, and the ranges of those
 * that do not (in none, or in several).
 */
export function slotCoverage(ranges: readonly SlotRange[]): { covered: number; uncovered: SlotRange[] } {
  const owners = new Uint16Array(slotCount);
  for (const r of ranges) {
    for (let slot = Math.max(0, r.first); slot <= Math.min(slotCount - 1, r.last); slot++) owners[slot]! += 1;
  }
  let covered = 0;
  const uncovered: SlotRange[] = [];
  for (let slot = 0; slot < slotCount; slot++) {
    if (owners[slot] === 1) {
      covered++;
      continue;
    }
    const last = uncovered.at(-1);
    if (last && last.last === slot - 1) last.last = slot;
    else uncovered.push({ first: slot, last: slot });
  }
  return { covered, uncovered };
}
