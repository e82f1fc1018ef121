// The Mesh's slot layout, pure: which MeshPartitions a Mesh has and which contiguous slot range
// each is given. The reconciler (reconcile.ts) applies what `planPartitions` and
// `layoutSlots` decide and deletes what `partitionsToDelete` names; nothing here reads the
// cluster or the clock (ADR 33). Once a Mesh's slots have owner keys, the keys decide what a
// partition serves and slots move online (ADR 34): an existing partition keeps the slots it
// was created with, and a surplus partition goes only once no slot names it.
import { slotCount, type SlotRange } from '@meshwork/contract';
import type { MeshMovesOutcome } from './mesh-moves.ts';

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

/** One partition of the layout as it is applied: its name and the slot ranges of its spec. */
export interface LaidPartition {
  name: string;
  slots: SlotRange[];
}

/**
 * The slots each partition of the layout is applied with. With `relay` (nothing has registered
 * yet, ADR 33) every partition gets its even range; otherwise a partition in `existing` keeps
 * its slots, since a change would roll its members for nothing (the owner keys decide what it
 * serves), and a new one gets its even range (the span of its change feed and its sweeper).
 */
export function layoutSlots(plan: PartitionPlan, existing: ReadonlyMap<string, readonly SlotRange[]>, relay: boolean): LaidPartition[] {
  return plan.keep.map((p) => {
    const kept = relay ? undefined : existing.get(p.name);
    return { name: p.name, slots: kept && kept.length > 0 ? kept.map((r) => ({ ...r })) : [{ ...p.slots }] };
  });
}

/**
 * The last pass's answer when it may decide deletions: it was for this layout and no pass runs
 * or is asked for after it (one that runs may be moving slots to a partition that an older
 * answer found empty); undefined otherwise.
 */
export function answerForLayout(
  plan: PartitionPlan,
  state: { busy: boolean; outcome?: Pick<MeshMovesOutcome, 'step'>; outcomeLayout?: readonly string[] },
): MeshMovesOutcome['step'] | undefined {
  if (state.busy || !state.outcome || !state.outcomeLayout) return undefined;
  const layout = plan.keep.map((p) => p.name);
  const same = state.outcomeLayout.length === layout.length && state.outcomeLayout.every((name, i) => name === layout[i]);
  return same ? state.outcome.step : undefined;
}

/**
 * The surplus partitions to delete now, from the last pass of the slot moves (`undefined`
 * while none has answered): those it names as owning no slot, or, while it answers `unowned`
 * (nothing registered, so nothing moves), every surplus partition as in ADR 33. Without an
 * answer nothing is deleted, since a surplus partition may still own slots.
 */
export function partitionsToDelete(plan: PartitionPlan, step: MeshMovesOutcome['step'] | undefined): string[] {
  if (step?.kind === 'unowned') return [...plan.remove];
  if (step?.kind !== 'remove') return [];
  const named = new Set(step.partitions);
  return plan.remove.filter((p) => named.has(p));
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
