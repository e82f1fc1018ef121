// What the Mesh reconciler does next about its slot owners (ADR 34), pure: from the layout's
// partitions, the owner of every slot (the owner keys, `readSlotOwners`) and which partitions
// are ready, one step: wait for the layout's partitions to be ready, run a plan of moves,
// delete surplus partitions that own no slot any more, or nothing. Also slot coverage counted
// from the owners rather than from the partitions' specs, which moves no longer keep in step.
import { slotCount, type SlotRange } from '@meshwork/contract';
import { slotsToRanges, planMoves, type MovePlan } from './moves.ts';

/** The next step of a Mesh's rebalancing. */
export type MoveStep =
  /** Some partitions of the layout have no ready member yet: a chunk moved to one would be unavailable. */
  | { kind: 'wait'; partitions: string[] }
  /** Run this plan (`runMovePlan`), then look again. */
  | { kind: 'move'; plan: MovePlan }
  /** These partitions are outside the layout and own no slot: delete them. */
  | { kind: 'remove'; partitions: string[] }
  /** Every slot is where the layout wants it and nothing is left to delete. */
  | { kind: 'settled' };

export interface MoveStepInputs {
  /** The layout's partitions, in index order. */
  layout: readonly string[];
  /** The partition serving each of the slots (from the owner keys); '' for a slot nobody owns. */
  owners: readonly string[];
  /** The partitions that have a ready member. */
  ready: ReadonlySet<string>;
  /** The partitions the Mesh owns that are outside the layout. */
  surplus: readonly string[];
}

/**
 * Decides the next step. Moves wait until every partition of the layout is ready, so that a
 * chunk is never handed to a partition that cannot serve it; a surplus partition is deleted only
 * once no slot names it, so that a shrink never leaves a slot to a partition that is gone.
 */
export function nextMoveStep(inputs: MoveStepInputs): MoveStep {
  const { layout, owners, ready, surplus } = inputs;
  const notReady = layout.filter((p) => !ready.has(p));
  if (notReady.length > 0) return { kind: 'wait', partitions: notReady };
  const plan = planMoves(owners, layout);
  if (plan.moves.length > 0) return { kind: 'move', plan };
  const owning = new Set(owners);
  const empty = surplus.filter((p) => !owning.has(p));
  if (empty.length > 0) return { kind: 'remove', partitions: [...empty].sort() };
  return { kind: 'settled' };
}

/**
 * Slot coverage from the owners: a slot is covered when its owner is a ready partition. An owner
 * key names one partition, so the overlap that coverage from specs can show cannot happen here;
 * a slot without an owner, or whose owner is not ready or no longer exists, is uncovered.
 */
export function ownerCoverage(owners: readonly string[], ready: ReadonlySet<string>): { covered: number; uncovered: SlotRange[] } {
  if (owners.length !== slotCount) throw new RangeError(`a layout has ${slotCount} slots, not ${owners.length}`);
  const uncovered: number[] = [];
  owners.forEach((owner, slot) => {
    if (owner === '' || !ready.has(owner)) uncovered.push(slot);
  });
  return {
    covered: slotCount - uncovered.length,
    uncovered: slotsToRanges(uncovered),
  };
}

/** The slots each partition owns, as ranges (for a status or an Event). */
export function ownedRanges(owners: readonly string[]): Map<string, SlotRange[]> {
  const held = new Map<string, number[]>();
  owners.forEach((owner, slot) => {
    if (owner === '') return;
    const slots = held.get(owner);
    if (slots) slots.push(slot);
    else held.set(owner, [slot]);
  });
  return new Map([...held].map(([p, slots]) => [p, slotsToRanges(slots)]));
}
