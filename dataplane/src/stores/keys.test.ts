import { describe, expect, it } from 'vitest';
import { slotOf } from '../slots.ts';
import {
  credentialIdOf,
  credentialKey,
  entriesPrefix,
  entryKey,
  objectKey,
  slotSegment,
  tombstoneKey,
  tombstonesPrefix,
  userDeviceKey,
  userDevicesPrefix,
  userKey,
} from './keys.ts';

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

describe('credential keys', () => {
  it.each(['uAlice', 'dLaptop_-1'])('names the id %s back from its credential key', (id) => {
    expect(credentialKey(id)).toBe(`/mw/k/${slotSegment(slotOf(id))}/${id}`);
    expect(credentialIdOf(credentialKey(id))).toBe(id);
  });

  it.each(['/mw/k/0042/', '/mw/k/42/uA', '/mw/s/0042/u/uA', '/mw/k/0042/uA/x'])('names no id for %s', (key) => {
    expect(credentialIdOf(key)).toBeUndefined();
  });

  it("keeps a user's device index under the user's record", () => {
    expect(userDeviceKey('uA', 'dB')).toBe(`${userKey('uA')}/d/dB`);
    expect(userDeviceKey('uA', 'dB').startsWith(userDevicesPrefix('uA'))).toBe(true);
  });
});
