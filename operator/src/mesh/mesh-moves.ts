// One pass of a Mesh's rebalancing against its etcd (ADR 34): read the owner of every slot,
// seed the owner keys once every slot has a claim, finish a plan a former leader left unfinished, decide the next step (move-step.ts) and, when
// it is a plan, run it and decide again. The Mesh reconciler is to call this once per
// reconcile with the layout and the partitions that are ready, and delete the partitions the
// step names; the I/O is here so that it can be tested against a real etcd without the rest.
import type { Etcd3 } from 'etcd3';
import { nextMoveStep, type MoveStep } from './move-step.ts';
import type { SlotMove } from './moves.ts';
import { readRecordedPlan, readSlotOwners, runMovePlan, seedOwnerKeys } from './slot-mover.ts';

export interface MeshMovesInputs {
  /** The Mesh's name (its plan is recorded under `/mw/moves/<mesh>`). */
  mesh: string;
  /** The layout's partitions, in index order. */
  layout: readonly string[];
  /** The partitions with a ready member. */
  ready: ReadonlySet<string>;
  /** The partitions the Mesh owns outside the layout. */
  surplus: readonly string[];
  /** Hears each chunk moved (for an Event or a log line). */
  onMoved?: (move: SlotMove, revision: number) => void;
}

/** Where a pass left the Mesh: the step still to take and the owner of every slot. */
export interface MeshMovesOutcome {
  /** What is left after the pass: `settled`, partitions to delete, or partitions to wait for; never `move`. */
  step: Exclude<MoveStep, { kind: 'move' }> | { kind: 'unowned'; slots: number };
  /** The partition serving each slot ('' for none) after the pass. */
  owners: string[];
  /** Slots moved in this pass. */
  moved: number;
}

/**
 * Runs one pass. A plan left unfinished is continued only once every partition it moves slots
 * to is ready; slots without any owner (partitions not registered yet) stop the pass before
 * planning, since the planner cannot place them.
 */
export async function driveMeshMoves(etcd: Etcd3, inputs: MeshMovesInputs): Promise<MeshMovesOutcome> {
  let moved = 0;
  const heard = (move: SlotMove, revision: number): void => {
    moved += move.slots.reduce((n, r) => n + r.last - r.first + 1, 0);
    inputs.onMoved?.(move, revision);
  };
  const recorded = await readRecordedPlan(etcd, inputs.mesh);
  if (recorded) {
    const targets = [...new Set(recorded.moves.slice(recorded.done).map((m) => m.to))];
    const notReady = targets.filter((p) => !inputs.ready.has(p));
    if (notReady.length > 0) return { step: { kind: 'wait', partitions: notReady }, owners: (await readSlotOwners(etcd)).owners, moved };
    await runMovePlan(etcd, inputs.mesh, { moves: [] }, heard);
  }
  // One plan reaches the layout; a second round only if another writer moved slots meanwhile.
  for (let round = 0; ; round++) {
    const { owners, keys } = await readSlotOwners(etcd);
    const unowned = owners.filter((o) => o === '').length;
    if (unowned > 0) return { step: { kind: 'unowned', slots: unowned }, owners, moved };
    // From here on the keys alone decide, so that a partition created for a new layout starts beside the current owners.
    if (keys.size < owners.length) await seedOwnerKeys(etcd);
    const step = nextMoveStep({ layout: inputs.layout, owners, ready: inputs.ready, surplus: inputs.surplus });
    if (step.kind !== 'move') return { step, owners, moved };
    if (round === 2) throw new Error(`the slots of Mesh ${inputs.mesh} did not reach the layout after two plans`);
    await runMovePlan(etcd, inputs.mesh, step.plan, heard);
  }
}
