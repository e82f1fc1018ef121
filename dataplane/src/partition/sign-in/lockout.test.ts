import { describe, expect, it } from 'vitest';
import { AddressFailures, afterFailure, lockedForMillis, retryAfterSeconds, type FailureCount, type LockoutLimits } from './lockout.ts';

const limits: LockoutLimits = { failures: 3, windowMillis: 1000, lockMillis: 5000 };

describe('afterFailure', () => {
  it.each<[string, FailureCount | undefined, number, FailureCount]>([
    ['the first failure', undefined, 100, { failures: 1, firstAt: 100, lockedUntil: 0 }],
    ['a second within the window', { failures: 1, firstAt: 100, lockedUntil: 0 }, 600, { failures: 2, firstAt: 100, lockedUntil: 0 }],
    ['the limit locks', { failures: 2, firstAt: 100, lockedUntil: 0 }, 900, { failures: 3, firstAt: 100, lockedUntil: 5900 }],
    [
      'a count older than the window starts over',
      { failures: 2, firstAt: 100, lockedUntil: 0 },
      1200,
      { failures: 1, firstAt: 1200, lockedUntil: 0 },
    ],
    [
      'a lock that ended starts over',
      { failures: 3, firstAt: 100, lockedUntil: 5900 },
      6000,
      { failures: 1, firstAt: 6000, lockedUntil: 0 },
    ],
  ])('%s', (_name, count, now, expected) => {
    expect(afterFailure(count, now, limits)).toEqual(expected);
  });
});

describe('lockedForMillis and retryAfterSeconds', () => {
  it.each<[FailureCount | undefined, number, number]>([
    [undefined, 0, 0],
    [{ failures: 2, firstAt: 0, lockedUntil: 0 }, 10, 0],
    [{ failures: 3, firstAt: 0, lockedUntil: 5000 }, 1000, 4000],
    [{ failures: 3, firstAt: 0, lockedUntil: 5000 }, 6000, 0],
  ])('%o at %d is locked for %d ms', (count, now, millis) => {
    expect(lockedForMillis(count, now)).toBe(millis);
  });

  it.each([
    [1, 1],
    [1000, 1],
    [1001, 2],
    [900_000, 900],
  ])('%d ms is Retry-After %d', (millis, seconds) => {
    expect(retryAfterSeconds(millis)).toBe(seconds);
  });
});

describe('AddressFailures', () => {
  it('locks an address at the limit, forgets it on success, and keeps a bounded number of addresses', () => {
    const addresses = new AddressFailures(limits, 2);
    for (let i = 0; i < 3; i++) addresses.fail('a', 10);
    expect(addresses.lockedFor('a', 20)).toBe(4990);
    expect(addresses.lockedFor('b', 20)).toBe(0);
    addresses.succeed('a');
    expect(addresses.lockedFor('a', 20)).toBe(0);
    for (let i = 0; i < 3; i++) addresses.fail('b', 10);
    addresses.fail('c', 10);
    addresses.fail('d', 10);
    // 'b' was the oldest of three: forgotten.
    expect(addresses.lockedFor('b', 20)).toBe(0);
  });
});
