import { describe, expect, it } from 'vitest';
import { contentHashOf, planBlockReads } from './content-plan.ts';

const blocks = [
  { sha256: 'a'.repeat(64), size: 10 },
  { sha256: 'b'.repeat(64), size: 10 },
  { sha256: 'c'.repeat(64), size: 5 },
];

describe('planBlockReads', () => {
  it.each([
    [
      { start: 0, end: 24 },
      [
        ['a', 0, 10],
        ['b', 0, 10],
        ['c', 0, 5],
      ],
    ],
    [
      { start: 5, end: 14 },
      [
        ['a', 5, 5],
        ['b', 0, 5],
      ],
    ],
    [{ start: 10, end: 19 }, [['b', 0, 10]]],
    [{ start: 24, end: 24 }, [['c', 4, 1]]],
    [
      { start: 9, end: 20 },
      [
        ['a', 9, 1],
        ['b', 0, 10],
        ['c', 0, 1],
      ],
    ],
  ])('plans %j', (range, expected) => {
    const plan = planBlockReads(blocks, range).map((r) => [r.sha256[0], r.skip, r.take]);
    expect(plan).toEqual(expected);
  });
});

describe('contentHashOf', () => {
  it('depends on block order and sizes', () => {
    const base = contentHashOf(blocks);
    expect(contentHashOf([...blocks])).toBe(base);
    expect(contentHashOf([blocks[1]!, blocks[0]!, blocks[2]!])).not.toBe(base);
    expect(contentHashOf([blocks[0]!, blocks[1]!, { ...blocks[2]!, size: 6 }])).not.toBe(base);
    expect(contentHashOf([])).toMatch(/^[0-9a-f]{64}$/);
  });
});
