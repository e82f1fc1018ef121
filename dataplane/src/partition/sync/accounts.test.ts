// Who may delete a device, as a table: its user's account token or the device itself; another
// device of the same user is refused (403); another user's device is not found (404), exactly
// like a device that does not exist, so that a caller never learns another user's device ids.
import { describe, expect, it } from 'vitest';
import type { DeviceRecord } from '../../stores/metadata-store.ts';
import { deviceRemovalDecision } from './accounts.ts';

const laptop: DeviceRecord = { id: 'dLaptop', userId: 'uAlice', name: 'laptop', createdAt: '' };

describe('deleting a device', () => {
  it.each<[string, Parameters<typeof deviceRemovalDecision>[0], DeviceRecord | undefined, ReturnType<typeof deviceRemovalDecision>]>([
    ["its user's account token", { kind: 'user', userId: 'uAlice' }, laptop, 'allowed'],
    ['the device itself', { kind: 'device', userId: 'uAlice', deviceId: 'dLaptop' }, laptop, 'allowed'],
    ['another device of the same user', { kind: 'device', userId: 'uAlice', deviceId: 'dPhone' }, laptop, 'forbidden'],
    ["another user's account token", { kind: 'user', userId: 'uBob' }, laptop, 'not_found'],
    ["another user's device", { kind: 'device', userId: 'uBob', deviceId: 'dBob' }, laptop, 'not_found'],
    ['a device that does not exist', { kind: 'user', userId: 'uAlice' }, undefined, 'not_found'],
    ['a device that does not exist, by a device', { kind: 'device', userId: 'uAlice', deviceId: 'dPhone' }, undefined, 'not_found'],
  ])('by %s', (_who, caller, device, decision) => {
    expect(deviceRemovalDecision(caller, device)).toBe(decision);
  });
});
