import { describe, expect, it } from 'vitest';
import type { ThrottleConfig } from '../../config.ts';
import { ClientLimits, type Client } from './client-limits.ts';

const MiB = 1024 * 1024;
const config: ThrottleConfig = {
  userRequestsPerSecond: 10,
  userBurst: 20,
  deviceRequestsPerSecond: 5,
  deviceBurst: 8,
  userBytesPerSecond: 4 * MiB,
  deviceBytesPerSecond: 2 * MiB,
  deviceLongPolls: 2,
  maxEntryBytes: 1024 * MiB,
  eventLoopLagMs: 100,
  concurrency: { min: 4, max: 64 },
};
const alice: Client = { userId: 'ua' };
const laptop: Client = { userId: 'ua', deviceId: 'd1' };
const phone: Client = { userId: 'ua', deviceId: 'd2' };
const bob: Client = { userId: 'ub', deviceId: 'd3' };

/** Admits `count` requests at `now`; the number admitted before the first refusal. */
function admitted(limits: ClientLimits, client: Client, count: number, now: number): number {
  for (let i = 0; i < count; i++) if (limits.admit(client, now) !== undefined) return i;
  return count;
}

describe('ClientLimits: requests per second', () => {
  it.each([
    { case: 'an account token', client: alice, burst: 20, reason: 'user_rate', retryMs: 100 },
    { case: 'a device token', client: laptop, burst: 8, reason: 'device_rate', retryMs: 200 },
  ])('admits exactly the burst for $case, then refuses with the refill time', ({ client, burst, reason, retryMs }) => {
    const limits = new ClientLimits(config);
    expect(admitted(limits, client, 100, 0)).toBe(burst);
    expect(limits.admit(client, 0)).toMatchObject({ reason, retryAfterMs: retryMs });
    expect(limits.admit(client, retryMs - 1)).toBeDefined();
    expect(limits.admit(client, retryMs)).toBeUndefined();
  });

  it('holds the long-run rate', () => {
    const limits = new ClientLimits(config);
    let ok = 0;
    // 100 requests a second for 10 seconds against 10/s with a burst of 20.
    for (let t = 0; t < 10_000; t += 10) if (limits.admit(alice, t) === undefined) ok++;
    expect(ok).toBeGreaterThanOrEqual(20 + 99 - 1);
    expect(ok).toBeLessThanOrEqual(20 + 100);
  });

  it("counts a device's requests against its user, so the user's total is bounded across devices", () => {
    const limits = new ClientLimits(config);
    expect(admitted(limits, laptop, 100, 0)).toBe(8);
    expect(admitted(limits, phone, 100, 0)).toBe(8);
    expect(admitted(limits, alice, 100, 0)).toBe(4);
    expect(limits.admit({ userId: 'ua', deviceId: 'd9' }, 0)).toMatchObject({ reason: 'user_rate' });
  });

  it('leaves other users alone while one floods', () => {
    const limits = new ClientLimits(config);
    for (let t = 0; t < 1000; t++) limits.admit(laptop, t);
    expect(admitted(limits, bob, 8, 1000)).toBe(8);
  });

  it('names the bound that frees last when several are exhausted', () => {
    const limits = new ClientLimits(config);
    admitted(limits, laptop, 8, 0);
    admitted(limits, alice, 12, 0);
    // Device empty (200 ms to a token), user empty (100 ms): the device bound decides.
    expect(limits.admit(laptop, 0)).toMatchObject({ reason: 'device_rate', retryAfterMs: 200 });
    expect(limits.admit(laptop, 0)?.message).toBe('device d1 is over its limit of 5 requests per second (burst 8)');
  });
});

describe('ClientLimits: bytes per second', () => {
  it('admits a body larger than the bucket, then refuses until the debt is repaid', () => {
    const limits = new ClientLimits(config);
    expect(limits.admit(laptop, 0, 6 * MiB)).toBeUndefined();
    // The device's 2 MiB/s bucket is 4 MiB in debt: two seconds. The user's is 2 MiB: half a second.
    expect(limits.admit(laptop, 0)).toMatchObject({ reason: 'device_bytes', retryAfterMs: 2000 });
    expect(limits.admit(phone, 0)).toMatchObject({ reason: 'user_bytes', retryAfterMs: 500 });
    expect(limits.admit(laptop, 2000)).toBeUndefined();
  });

  it('charges response bytes after the fact', () => {
    const limits = new ClientLimits(config);
    expect(limits.admit(bob, 0)).toBeUndefined();
    limits.chargeBytes(bob, 10, 3 * MiB);
    expect(limits.admit(bob, 10)).toMatchObject({ reason: 'device_bytes', retryAfterMs: 500 });
    expect(limits.admit(bob, 510)).toBeUndefined();
  });

  it('describes a byte bound in readable units', () => {
    const limits = new ClientLimits(config);
    limits.admit(alice, 0, 9 * MiB);
    expect(limits.admit(alice, 0)?.message).toBe('user ua is over its limit of 4 MiB/s of request and response bodies');
  });
});

describe('ClientLimits: memory', () => {
  it('forgets clients whose buckets have refilled', () => {
    const limits = new ClientLimits(config);
    for (let i = 0; i < 1000; i++) limits.admit({ userId: `u${i}`, deviceId: `d${i}` }, 0);
    expect(limits.size).toEqual({ users: 1000, devices: 1000 });
    // Still refilling 50 ms later: nothing is forgotten.
    limits.admit({ userId: 'w' }, 50);
    expect(limits.size.users).toBe(1001);
    // Long after, every bucket is full again: each arrival forgets two idle users.
    for (let i = 0; i < 300; i++) limits.admit({ userId: `v${i}` }, 100_000);
    expect(limits.size.users).toBe(1001 + 300 - 2 * 300);
    expect(limits.remembers({ userId: 'u0' })).toBe(false);
    expect(limits.remembers({ userId: 'u999' })).toBe(true);
  });

  it('never forgets a client that is still throttled, except at the cap', () => {
    const limits = new ClientLimits(config);
    admitted(limits, laptop, 9, 0);
    for (let i = 0; i < 100; i++) limits.admit({ userId: `v${i}`, deviceId: `e${i}` }, 1);
    expect(limits.remembers(laptop)).toBe(true);
    expect(limits.admit(laptop, 1)).toMatchObject({ reason: 'device_rate' });
  });

  it('holds at most the cap, forgetting the least recently seen', () => {
    const limits = new ClientLimits(config, 50);
    for (let i = 0; i < 500; i++) admitted(limits, { userId: `u${i}`, deviceId: `d${i}` }, 9, 0);
    expect(limits.size).toEqual({ users: 50, devices: 50 });
    expect(limits.remembers({ userId: 'u0', deviceId: 'd0' })).toBe(false);
    expect(limits.remembers({ userId: 'u499', deviceId: 'd499' })).toBe(true);
  });
});
