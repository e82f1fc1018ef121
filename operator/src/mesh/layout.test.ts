// The slot layout as tables: even contiguous ranges, the plan when the partition count moves,
// the slots each partition is applied with once slots move online, which surplus partitions
// may be deleted, and coverage that tells a gap from an overlap.
import { describe, expect, it } from 'vitest';
import { formatSlotRanges, slotCount } from '@meshwork/contract';
import { answerForLayout, evenSlotLayout, layoutSlots, partitionsToDelete, planPartitions, slotCoverage } from './layout.ts';
import type { MeshMovesOutcome } from './mesh-moves.ts';

describe('evenSlotLayout', () => {
  it.each([
    { partitions: 1, text: '0-4095' },
    { partitions: 2, text: '0-2047,2048-4095' },
    { partitions: 3, text: '0-1364,1365-2729,2730-4095' },
    { partitions: 4, text: '0-1023,1024-2047,2048-3071,3072-4095' },
    { partitions: 5, text: '0-818,819-1637,1638-2456,2457-3275,3276-4095' },
  ])('cuts the slots into $partitions ranges: $text', ({ partitions, text }) => {
    expect(
      evenSlotLayout(partitions)
        .map((r) => formatSlotRanges([r]))
        .join(','),
    ).toBe(text);
  });

  it.each([1, 2, 3, 7, 64, 100, 255, 256, 4096])('covers every slot once with sizes that differ by at most one (%i partitions)', (n) => {
    const layout = evenSlotLayout(n);
    expect(layout).toHaveLength(n);
    expect(layout[0]!.first).toBe(0);
    expect(layout.at(-1)!.last).toBe(slotCount - 1);
    for (let i = 1; i < n; i++) expect(layout[i]!.first).toBe(layout[i - 1]!.last + 1);
    const sizes = layout.map((r) => r.last - r.first + 1);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    expect(slotCoverage(layout)).toEqual({ covered: slotCount, uncovered: [] });
  });

  it.each([0, -1, 1.5, 4097])('refuses %s partitions', (n) => {
    expect(() => evenSlotLayout(n)).toThrow(RangeError);
  });
});

describe('planPartitions', () => {
  it.each([
    { case: 'a new Mesh', partitions: 2, owned: [], keep: ['m-p0:0-2047', 'm-p1:2048-4095'], remove: [] },
    {
      case: 'growing 2 to 3 re-lays the two and adds one',
      partitions: 3,
      owned: ['m-p0', 'm-p1'],
      keep: ['m-p0:0-1364', 'm-p1:1365-2729', 'm-p2:2730-4095'],
      remove: [],
    },
    {
      case: 'shrinking 3 to 2 removes the last',
      partitions: 2,
      owned: ['m-p2', 'm-p0', 'm-p1'],
      keep: ['m-p0:0-2047', 'm-p1:2048-4095'],
      remove: ['m-p2'],
    },
    { case: 'an owned partition of another name', partitions: 1, owned: ['m-p0', 'm-old'], keep: ['m-p0:0-4095'], remove: ['m-old'] },
  ])('$case', ({ partitions, owned, keep, remove }) => {
    const plan = planPartitions('m', partitions, owned);
    expect(plan.keep.map((p) => `${p.name}:${formatSlotRanges([p.slots])}`)).toEqual(keep);
    expect(plan.remove).toEqual(remove);
  });
});

describe('layoutSlots', () => {
  const laidForTwo = new Map([
    ['m-p0', [{ first: 0, last: 2047 }]],
    ['m-p1', [{ first: 2048, last: 4095 }]],
  ]);
  const text = (laid: ReturnType<typeof layoutSlots>): string[] => laid.map((p) => `${p.name}:${formatSlotRanges(p.slots)}`);

  it.each([
    {
      case: 'growing 2 to 3 keeps the two partitions as they are and gives the new one its even range',
      partitions: 3,
      existing: laidForTwo,
      relay: false,
      laid: ['m-p0:0-2047', 'm-p1:2048-4095', 'm-p2:2730-4095'],
    },
    {
      case: 'growing 2 to 3 before anything registered re-lays every partition (ADR 33)',
      partitions: 3,
      existing: laidForTwo,
      relay: true,
      laid: ['m-p0:0-1364', 'm-p1:1365-2729', 'm-p2:2730-4095'],
    },
    {
      case: 'shrinking 3 to 2 keeps the ranges the two were created with',
      partitions: 2,
      existing: new Map([
        ['m-p0', [{ first: 0, last: 1364 }]],
        ['m-p1', [{ first: 1365, last: 2729 }]],
        ['m-p2', [{ first: 2730, last: 4095 }]],
      ]),
      relay: false,
      laid: ['m-p0:0-1364', 'm-p1:1365-2729'],
    },
    {
      case: 'a partition with several ranges keeps them all',
      partitions: 2,
      existing: new Map([
        [
          'm-p0',
          [
            { first: 0, last: 9 },
            { first: 20, last: 29 },
          ],
        ],
      ]),
      relay: false,
      laid: ['m-p0:0-9,20-29', 'm-p1:2048-4095'],
    },
    { case: 'a new Mesh gets the even layout', partitions: 2, existing: new Map(), relay: false, laid: ['m-p0:0-2047', 'm-p1:2048-4095'] },
  ])('$case', ({ partitions, existing, relay, laid }) => {
    const plan = planPartitions('m', partitions, [...existing.keys()]);
    expect(text(layoutSlots(plan, existing, relay))).toEqual(laid);
  });
});

describe('partitionsToDelete', () => {
  const shrunk = planPartitions('m', 2, ['m-p0', 'm-p1', 'm-p2', 'm-p3']);
  it.each<{ case: string; step: MeshMovesOutcome['step'] | undefined; deleted: string[] }>([
    { case: 'no pass has answered yet: nothing, a surplus partition may still own slots', step: undefined, deleted: [] },
    {
      case: 'nothing registered yet: every surplus partition, as in ADR 33',
      step: { kind: 'unowned', slots: 4096 },
      deleted: ['m-p2', 'm-p3'],
    },
    { case: 'the pass names the surplus partitions that own no slot', step: { kind: 'remove', partitions: ['m-p3'] }, deleted: ['m-p3'] },
    { case: 'a name the layout keeps again is not deleted', step: { kind: 'remove', partitions: ['m-p1', 'm-p2'] }, deleted: ['m-p2'] },
    { case: 'the pass waits for partitions: nothing', step: { kind: 'wait', partitions: ['m-p1'] }, deleted: [] },
    { case: 'settled: nothing', step: { kind: 'settled' }, deleted: [] },
  ])('$case', ({ step, deleted }) => {
    expect(partitionsToDelete(shrunk, step)).toEqual(deleted);
  });
});

describe('answerForLayout', () => {
  const shrunk = planPartitions('m', 2, ['m-p0', 'm-p1', 'm-p2']);
  const removeP2 = { step: { kind: 'remove' as const, partitions: ['m-p2'] } };
  it.each([
    { case: 'an idle driver whose last pass was for this layout', busy: false, layout: ['m-p0', 'm-p1'], trusted: true },
    { case: 'a pass runs or is asked for after it', busy: true, layout: ['m-p0', 'm-p1'], trusted: false },
    { case: 'the answer was for another layout', busy: false, layout: ['m-p0', 'm-p1', 'm-p2'], trusted: false },
    { case: 'no pass has answered', busy: false, layout: undefined, trusted: false },
  ])('$case: trusted $trusted', ({ busy, layout, trusted }) => {
    const state = { busy, ...(layout ? { outcome: removeP2, outcomeLayout: layout } : {}) };
    expect(answerForLayout(shrunk, state)).toEqual(trusted ? removeP2.step : undefined);
  });
});

describe('slotCoverage', () => {
  it.each([
    { case: 'nothing', ranges: [], covered: 0, uncovered: '0-4095' },
    {
      case: 'a gap',
      ranges: [
        { first: 0, last: 99 },
        { first: 200, last: 4095 },
      ],
      covered: 3996,
      uncovered: '100-199',
    },
    {
      case: 'an overlap counts as not covered',
      ranges: [
        { first: 0, last: 2100 },
        { first: 2048, last: 4095 },
      ],
      covered: 4043,
      uncovered: '2048-2100',
    },
    { case: 'one slot', ranges: [{ first: 7, last: 7 }], covered: 1, uncovered: '0-6,8-4095' },
  ])('$case', ({ ranges, covered, uncovered }) => {
    const result = slotCoverage(ranges);
    expect(result.covered).toBe(covered);
    expect(formatSlotRanges(result.uncovered)).toBe(uncovered);
  });
});
