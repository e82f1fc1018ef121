// Which S3 answers are repeated, and how long the waits between attempts are.
import { describe, expect, it } from 'vitest';
import { defaultS3RetryPolicy, isRetryableNetworkError, isRetryableS3Answer, s3RetryDelayMs } from './s3-retry.ts';

describe('isRetryableS3Answer', () => {
  it.each([
    [503, 'SlowDown', true],
    [503, undefined, true],
    [503, 'ServiceUnavailable', true],
    [400, 'SlowDown', true],
    [500, 'InternalError', true],
    [500, undefined, true],
    [500, 'NotImplemented', false],
    [404, 'NoSuchKey', false],
    [403, 'AccessDenied', false],
    [400, 'XAmzContentSHA256Mismatch', false],
    [502, undefined, false],
  ])('%d %s: %s', (status, code, retry) => {
    expect(isRetryableS3Answer(status, code)).toBe(retry);
  });
});

describe('s3RetryDelayMs', () => {
  const policy = defaultS3RetryPolicy;
  it.each([
    // Full jitter: between 0 and a cap that doubles per attempt.
    [1, 0, undefined, 0],
    [1, 0.999, undefined, 99],
    [2, 0.5, undefined, 100],
    [3, 0.999, undefined, 399],
    // The cap stops at maxDelayMs.
    [20, 0.5, undefined, 2500],
    // Retry-After in seconds, with jitter above it.
    [1, 0, '2', 2000],
    [1, 0.5, '1', 1050],
    // Bounded: a server asking for a minute gets maxDelayMs.
    [1, 0, '60', 5000],
    // An HTTP date or garbage is ignored: the backoff applies.
    [2, 0.5, 'Wed, 21 Oct 2015 07:28:00 GMT', 100],
    [2, 0.5, '-1', 100],
  ])('attempt %d, random %d, Retry-After %s: %d ms', (attempt, random, retryAfter, ms) => {
    expect(s3RetryDelayMs(policy, attempt, random, retryAfter)).toBe(ms);
  });
});

describe('isRetryableNetworkError', () => {
  it.each([
    [Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), true],
    [Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }), true],
    [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), false],
    [new Error('no answer within 30000 ms'), false],
    [undefined, false],
  ])('%s: %s', (err, retry) => {
    expect(isRetryableNetworkError(err)).toBe(retry);
  });
});
