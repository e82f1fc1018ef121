// The ranges a partition serves, from a per-slot "mine" flag: what it logs and mints users in.
import { describe, expect, it } from 'vitest';
import { formatSlotRanges } from '../slots.ts';
import { rangesOf } from './slot-owners.ts';

describe('rangesOf', () => {
  it.each([
    { what: 'nothing', mine: () => false, text: '' },
    { what: 'everything', mine: () => true, text: '0-4095' },
    {
      what: 'two runs and a single slot',
      mine: (s: number) => (s >= 10 && s <= 20) || s === 100 || s >= 4090,
      text: '10-20,100,4090-4095',
    },
    {
      what: 'the share a third partition takes in 2 → 3',
      mine: (s: number) => (s >= 1366 && s <= 2047) || s >= 3413,
      text: '1366-2047,3413-4095',
    },
  ])('gives $what as $text', ({ mine, text }) => {
    expect(formatSlotRanges(rangesOf(mine))).toBe(text);
  });
});
