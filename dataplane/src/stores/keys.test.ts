import { describe, expect, it } from 'vitest';
import { slotOf } from '../slots.ts';
import { entriesPrefix, entryKey, objectKey, slotSegment, tombstoneKey, tombstonesPrefix, userKey } from './keys.ts';

describe('key layout', () => {
  it.each([
    [0, '0000'],
    [42, '0042'],
    [4095, '4095'],
  ])('pads slot %i as %s so key order is slot order', (slot, segment) => {
    expect(slotSegment(slot)).toBe(segment);
  });

  it('prefixes every key with the slot of the id it belongs to', () => {
    const objectId = 'oXYZ';
    const slot = slotSegment(slotOf(objectId));
    expect(objectKey(objectId)).toBe(`/mw/s/${slot}/o/oXYZ`);
    expect(entryKey(objectId, 'a/b.txt')).toBe(`/mw/s/${slot}/o/oXYZ/e/a/b.txt`);
    expect(entryKey(objectId, 'x').startsWith(entriesPrefix(objectId))).toBe(true);
    expect(tombstoneKey(objectId, 'x').startsWith(tombstonesPrefix(slotOf(objectId)))).toBe(true);
    expect(userKey('uA')).toBe(`/mw/s/${slotSegment(slotOf('uA'))}/u/uA`);
  });
});
