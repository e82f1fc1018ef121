// The rebalancing planner as tables and properties: the known growths and shrinks move the
// fewest slots, and for any layout every step keeps every slot owned by exactly one partition,
// no chunk exceeds 64 slots, and the end is an even layout over the wanted partitions.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatSlotRanges, slotCount } from '@meshwork/contract';
import { evenSlotLayout } from './layout.ts';
import { maxSlotsPerMove, planMoves, rangesToSlots, slotsToRanges, UnplannableLayoutError, type MovePlan } from './moves.ts';

/** The owner of every slot when partitions `names` hold the even contiguous layout. */
function evenOwners(names: readonly string[]): string[] {
  const owners: string[] = [];
  evenSlotLayout(names.length).forEach((r, i) => {
    for (let s = r.first; s <= r.last; s++) owners[s] = names[i]!;
  });
  return owners;
}

/** Runs the plan's moves one by one, checking that each moves only slots its source owns at that step. */
function replay(owners: readonly string[], plan: MovePlan): string[] {
  const now = [...owners];
  for (const move of plan.moves) {
    const slots = rangesToSlots(move.slots);
    expect(slots.length).toBeGreaterThan(0);
    expect(slots.length).toBeLessThanOrEqual(maxSlotsPerMove);
    expect(move.from).not.toBe(move.to);
    for (const slot of slots) {
      expect(now[slot]).toBe(move.from);
      now[slot] = move.to;
    }
  }
  return now;
}

function moved(owners: readonly string[], target: readonly string[]): number {
  return owners.filter((owner, slot) => owner !== target[slot]).length;
}

function counts(owners: readonly string[]): Map<string, number> {
  const result = new Map<string, number>();
  for (const o of owners) result.set(o, (result.get(o) ?? 0) + 1);
  return result;
}

describe('planMoves', () => {
  it.each([
    { from: ['p0', 'p1'], to: ['p0', 'p1', 'p2'], moved: 1365, gained: { p2: '1366-2047,3413-4095' } },
    { from: ['p0'], to: ['p0', 'p1'], moved: 2048, gained: { p1: '2048-4095' } },
    { from: ['p0', 'p1', 'p2', 'p3'], to: ['p0', 'p1'], moved: 2048, gained: {} },
    { from: ['p0', 'p1'], to: ['p0', 'p1'], moved: 0, gained: {} },
    { from: ['p0', 'p1', 'p2'], to: ['p0', 'p1', 'p2'], moved: 0, gained: {} },
  ])('moves $moved slots from $from to $to', ({ from, to, moved: expected, gained }) => {
    const owners = evenOwners(from);
    const plan = planMoves(owners, to);
    const end = replay(owners, plan);
    expect(end).toEqual(plan.target);
    expect(moved(owners, end)).toBe(expected);
    for (const [partition, text] of Object.entries(gained)) {
      expect(formatSlotRanges(slotsToRanges(end.flatMap((o, s) => (o === partition ? [s] : []))))).toBe(text);
    }
  });

  it('brings 2 → 3 → 2 back to two even halves moving 1365 slots each way', () => {
    const two = evenOwners(['p0', 'p1']);
    const grown = planMoves(two, ['p0', 'p1', 'p2']);
    const shrunk = planMoves(grown.target, ['p0', 'p1']);
    expect(moved(grown.target, shrunk.target)).toBe(1365);
    expect([...counts(shrunk.target).values()]).toEqual([2048, 2048]);
    expect(shrunk.moves.every((m) => m.from === 'p2')).toBe(true);
  });

  it('refuses a layout with a slot nobody owns, or no partitions', () => {
    const owners = evenOwners(['p0']);
    owners[7] = '';
    expect(() => planMoves(owners, ['p0'])).toThrow(UnplannableLayoutError);
    expect(() => planMoves(evenOwners(['p0']), [])).toThrow(UnplannableLayoutError);
  });

  it('keeps every slot owned once at every step, chunks within 64 slots and moves no more than needed, for any layout', () => {
    const names = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5'];
    const layout = fc.oneof(
      // Even contiguous layouts, as a Mesh starts with.
      fc.integer({ min: 1, max: 6 }).map((n) => evenOwners(names.slice(0, n))),
      // Arbitrary ones: runs of slots with a random owner each.
      fc.array(fc.tuple(fc.integer({ min: 1, max: 900 }), fc.constantFrom(...names)), { minLength: 1, maxLength: 40 }).map((runs) => {
        const owners: string[] = [];
        let i = 0;
        while (owners.length < slotCount) {
          const [length, owner] = runs[i++ % runs.length]!;
          for (let k = 0; k < length && owners.length < slotCount; k++) owners.push(owner);
        }
        return owners;
      }),
    );
    const wanted = fc.subarray(names, { minLength: 1 });
    fc.assert(
      fc.property(layout, wanted, (owners, partitions) => {
        const plan = planMoves(owners, partitions);
        const end = replay(owners, plan);
        expect(end).toEqual(plan.target);
        const sizes = partitions.map((p) => counts(end).get(p) ?? 0);
        expect(sizes.reduce((a, b) => a + b, 0)).toBe(slotCount);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
        // Never more than a partition's surplus over the smaller share, nor less than its surplus over the larger one.
        const held = counts(owners);
        const low = Math.floor(slotCount / partitions.length);
        const high = Math.ceil(slotCount / partitions.length);
        let most = 0;
        let least = 0;
        for (const [owner, count] of held) {
          const stays = partitions.includes(owner);
          most += stays ? Math.max(0, count - low) : count;
          least += stays ? Math.max(0, count - high) : count;
        }
        const n = moved(owners, end);
        expect(n).toBeLessThanOrEqual(most);
        expect(n).toBeGreaterThanOrEqual(least);
        // Exactly the surplus over each partition's share: a slot that moves never moves twice.
        expect(n).toBe(rangesToSlots(plan.moves.flatMap((m) => m.slots)).length);
      }),
      { numRuns: 150 },
    );
    // 150 layouts of 4096 slots take 3 to 5 s on a busy 2-core machine, past the default 5 s at times.
  }, 30_000);
});
