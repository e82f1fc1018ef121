// The reconciler's next step about slot owners, as tables and a walk: moves wait for the
// layout's partitions to be ready, a surplus partition is deleted only once it owns nothing,
// and stepping 2 → 3 → 2 with the steps alone ends settled with every slot covered once.
import { describe, expect, it } from 'vitest';
import { slotCount } from '@meshwork/contract';
import { evenSlotLayout } from './layout.ts';
import { rangesToSlots } from './moves.ts';
import { nextMoveStep, ownedRanges, ownerCoverage, type MoveStep } from './move-step.ts';

function evenOwners(names: readonly string[]): string[] {
  const owners: string[] = [];
  evenSlotLayout(names.length).forEach((r, i) => {
    for (let s = r.first; s <= r.last; s++) owners[s] = names[i]!;
  });
  return owners;
}

/** Applies a step's moves to the owners, as `runMovePlan` does to the keys. */
function apply(owners: string[], step: MoveStep): string[] {
  if (step.kind !== 'move') return owners;
  const next = [...owners];
  for (const move of step.plan.moves) {
    for (const slot of rangesToSlots(move.slots)) {
      expect(next[slot]).toBe(move.from);
      next[slot] = move.to;
    }
  }
  return next;
}

describe('nextMoveStep', () => {
  const two = evenOwners(['m-p0', 'm-p1']);

  it('is settled when the owners are the layout and nothing is surplus', () => {
    expect(nextMoveStep({ layout: ['m-p0', 'm-p1'], owners: two, ready: new Set(['m-p0', 'm-p1']), surplus: [] })).toEqual({
      kind: 'settled',
    });
  });

  it('waits for a new partition without a ready member before moving anything to it', () => {
    const step = nextMoveStep({ layout: ['m-p0', 'm-p1', 'm-p2'], owners: two, ready: new Set(['m-p0', 'm-p1']), surplus: [] });
    expect(step).toEqual({ kind: 'wait', partitions: ['m-p2'] });
  });

  it('also waits when a partition that gives slots away is not ready', () => {
    const step = nextMoveStep({ layout: ['m-p0', 'm-p1', 'm-p2'], owners: two, ready: new Set(['m-p1', 'm-p2']), surplus: [] });
    expect(step).toEqual({ kind: 'wait', partitions: ['m-p0'] });
  });

  it('moves 1365 slots to the third partition once it is ready', () => {
    const step = nextMoveStep({ layout: ['m-p0', 'm-p1', 'm-p2'], owners: two, ready: new Set(['m-p0', 'm-p1', 'm-p2']), surplus: [] });
    expect(step.kind).toBe('move');
    if (step.kind !== 'move') return;
    const moved = step.plan.moves.reduce((n, m) => n + rangesToSlots(m.slots).length, 0);
    expect(moved).toBe(1365);
    expect(new Set(step.plan.moves.map((m) => m.to))).toEqual(new Set(['m-p2']));
  });

  it('keeps a surplus partition that still owns slots, moving them away first', () => {
    const three = evenOwners(['m-p0', 'm-p1', 'm-p2']);
    const step = nextMoveStep({ layout: ['m-p0', 'm-p1'], owners: three, ready: new Set(['m-p0', 'm-p1']), surplus: ['m-p2'] });
    expect(step.kind).toBe('move');
    if (step.kind !== 'move') return;
    expect(new Set(step.plan.moves.map((m) => m.from))).toEqual(new Set(['m-p2']));
  });

  it('removes a surplus partition only once it owns no slot', () => {
    const step = nextMoveStep({ layout: ['m-p0', 'm-p1'], owners: two, ready: new Set(['m-p0', 'm-p1']), surplus: ['m-p2'] });
    expect(step).toEqual({ kind: 'remove', partitions: ['m-p2'] });
  });

  it('walks 2 → 3 → 2 to settled, every slot owned once by a partition of the layout at every step', () => {
    let owners = two;
    const ready = new Set(['m-p0', 'm-p1']);
    // Grow: the new partition is created and not ready yet.
    let step = nextMoveStep({ layout: ['m-p0', 'm-p1', 'm-p2'], owners, ready, surplus: [] });
    expect(step.kind).toBe('wait');
    ready.add('m-p2');
    step = nextMoveStep({ layout: ['m-p0', 'm-p1', 'm-p2'], owners, ready, surplus: [] });
    owners = apply(owners, step);
    expect(ownerCoverage(owners, ready).covered).toBe(slotCount);
    expect([...ownedRanges(owners).values()].map((r) => rangesToSlots(r).length).sort()).toEqual([1365, 1365, 1366]);
    expect(nextMoveStep({ layout: ['m-p0', 'm-p1', 'm-p2'], owners, ready, surplus: [] })).toEqual({ kind: 'settled' });
    // Shrink: m-p2 gives its slots back, then goes.
    step = nextMoveStep({ layout: ['m-p0', 'm-p1'], owners, ready, surplus: ['m-p2'] });
    expect(step.kind).toBe('move');
    owners = apply(owners, step);
    expect(ownerCoverage(owners, ready).covered).toBe(slotCount);
    expect(ownedRanges(owners).has('m-p2')).toBe(false);
    step = nextMoveStep({ layout: ['m-p0', 'm-p1'], owners, ready, surplus: ['m-p2'] });
    expect(step).toEqual({ kind: 'remove', partitions: ['m-p2'] });
    ready.delete('m-p2');
    expect(nextMoveStep({ layout: ['m-p0', 'm-p1'], owners, ready, surplus: [] })).toEqual({ kind: 'settled' });
    expect(ownerCoverage(owners, ready).covered).toBe(slotCount);
  });
});

describe('ownerCoverage', () => {
  it('counts every slot whose owner is ready', () => {
    expect(ownerCoverage(evenOwners(['a', 'b']), new Set(['a', 'b']))).toEqual({ covered: slotCount, uncovered: [] });
  });

  it('leaves out the slots of a partition that is not ready, and slots nobody owns', () => {
    const owners = evenOwners(['a', 'b']);
    owners[0] = '';
    expect(ownerCoverage(owners, new Set(['a']))).toEqual({
      covered: 2047,
      uncovered: [
        { first: 0, last: 0 },
        { first: 2048, last: 4095 },
      ],
    });
  });

  it('refuses a layout that is not the whole slot space', () => {
    expect(() => ownerCoverage(['a'], new Set(['a']))).toThrow(RangeError);
  });
});
