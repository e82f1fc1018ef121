import { describe, expect, it } from 'vitest';
import { defaultLeaseTimings, leaseExpired, microTime } from './leaderelection.ts';

describe('leader election rules', () => {
  it('uses lease 15 s, renew deadline 10 s, retry 2 s', () => {
    expect(defaultLeaseTimings).toEqual({ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 });
  });

  it.each([
    { observedAt: 0, now: 14_999, expired: false },
    { observedAt: 0, now: 15_000, expired: true },
    { observedAt: 10_000, now: 20_000, expired: false },
  ])('a lease last seen changing at $observedAt ms is expired at $now ms: $expired', ({ observedAt, now, expired }) => {
    expect(leaseExpired(observedAt, 15_000, now)).toBe(expired);
  });

  it('writes MicroTime with microseconds', () => {
    expect(microTime(new Date('2026-01-02T03:04:05.678Z'))).toBe('2026-01-02T03:04:05.678000Z');
  });
});
