import { describe, expect, it } from 'vitest';
import { formatSlotRanges, mintIdInSlot, parseSlotRanges, rangesContain, slotCount, slotOf, SlotRangeError } from './slots.ts';

describe('parseSlotRanges', () => {
  it.each([
    ['0-4095', [{ first: 0, last: 4095 }]],
    [
      '2048-2100,0-1023',
      [
        { first: 0, last: 1023 },
        { first: 2048, last: 2100 },
      ],
    ],
    [
      ' 7 , 9-10',
      [
        { first: 7, last: 7 },
        { first: 9, last: 10 },
      ],
    ],
  ])('parses %j', (text, expected) => {
    expect(parseSlotRanges(text)).toEqual(expected);
  });

  it.each([
    ['', 'is not a slot'],
    ['0-4096', 'leaves the slot space'],
    ['10-5', 'ends before'],
    ['0-10,10-20', 'overlap'],
    ['a-b', 'is not a slot'],
    ['-1', 'is not a slot'],
  ])('rejects %j', (text, message) => {
    expect(() => parseSlotRanges(text)).toThrow(SlotRangeError);
    expect(() => parseSlotRanges(text)).toThrow(message);
  });

  it('formats what it parses', () => {
    expect(formatSlotRanges(parseSlotRanges('0-1023,2048,3000-3001'))).toBe('0-1023,2048,3000-3001');
  });
});

describe('slots', () => {
  it('hashes ids into the slot space, stably', () => {
    for (const id of ['alice', 'o_abc', '']) {
      expect(slotOf(id)).toBeGreaterThanOrEqual(0);
      expect(slotOf(id)).toBeLessThan(slotCount);
      expect(slotOf(id)).toBe(slotOf(id));
    }
  });

  it.each([0, 1, 2047, 4095])('mints ids that hash to slot %i', (slot) => {
    const id = mintIdInSlot('o', slot);
    expect(id.startsWith('o')).toBe(true);
    expect(slotOf(id)).toBe(slot);
  });

  it.each([
    [10, true],
    [1023, true],
    [1024, false],
    [2048, true],
  ])('knows whether slot %i is owned', (slot, owned) => {
    expect(rangesContain(parseSlotRanges('0-1023,2048'), slot)).toBe(owned);
  });
});
