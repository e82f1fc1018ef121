import { describe, expect, it } from 'vitest';
import { fullBucket, isFull, levelAt, retryAfterSeconds, take, waitFor, type BucketLimit } from './token-bucket.ts';

const limit: BucketLimit = { perSecond: 10, capacity: 20 };

describe('token bucket', () => {
  it.each([
    { level: 0, at: 0, now: 0, expected: 0 },
    { level: 0, at: 0, now: 500, expected: 5 },
    { level: 0, at: 0, now: 5000, expected: 20 },
    { level: -30, at: 0, now: 1000, expected: -20 },
    { level: 5, at: 1000, now: 900, expected: 5 },
  ])('holds $expected tokens at $now ms from $level at $at ms', ({ level, at, now, expected }) => {
    expect(levelAt({ level, at }, limit, now)).toBeCloseTo(expected);
  });

  it.each([
    { level: 20, tokens: 1, wait: 0 },
    { level: 1, tokens: 1, wait: 0 },
    { level: 0.5, tokens: 1, wait: 50 },
    { level: 0, tokens: 1, wait: 100 },
    { level: -10, tokens: 0, wait: 1000 },
    { level: 0, tokens: 0, wait: 0 },
    { level: 20, tokens: 21, wait: Number.POSITIVE_INFINITY },
  ])('waits $wait ms for $tokens tokens at level $level', ({ level, tokens, wait }) => {
    expect(waitFor({ level, at: 0 }, limit, 0, tokens)).toBeCloseTo(wait);
  });

  it('goes into debt when charged more than it holds, and repays it at its rate', () => {
    const bucket = fullBucket(limit, 0);
    take(bucket, limit, 0, 50);
    expect(bucket.level).toBe(-30);
    expect(waitFor(bucket, limit, 0, 0)).toBe(3000);
    expect(waitFor(bucket, limit, 2999, 0)).toBeGreaterThan(0);
    expect(waitFor(bucket, limit, 3000, 0)).toBe(0);
  });

  it('is full again only after refilling completely', () => {
    const bucket = fullBucket(limit, 0);
    expect(isFull(bucket, limit, 0)).toBe(true);
    take(bucket, limit, 0, 5);
    expect(isFull(bucket, limit, 499)).toBe(false);
    expect(isFull(bucket, limit, 500)).toBe(true);
  });

  it.each([
    [0, 1],
    [1, 1],
    [999, 1],
    [1000, 1],
    [1001, 2],
    [29_500, 30],
  ])('turns a wait of %d ms into Retry-After %d', (ms, seconds) => {
    expect(retryAfterSeconds(ms)).toBe(seconds);
  });
});
