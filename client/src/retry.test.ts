// The retry policy, with the time and the randomness as arguments.
import { describe, expect, it } from 'vitest';
import { defaultRetryPolicy, isSafeToRepeat, parseRetryAfter, retryDelayMs, type RetryPolicy } from './retry.ts';

const policy: RetryPolicy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 10_000, jitter: 0.5 };

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  it.each([
    ['3', 3000],
    [' 0 ', 0],
    ['Thu, 01 Jan 2026 12:00:05 GMT', 5000],
    ['Thu, 01 Jan 2026 11:00:00 GMT', 0],
    [undefined, undefined],
    ['', undefined],
    ['soon', undefined],
    ['1.5', undefined],
  ])('%j → %j ms', (value, ms) => {
    expect(parseRetryAfter(value, now)).toBe(ms);
  });
});

describe('retryDelayMs', () => {
  it.each([
    ['Retry-After, no jitter drawn', 1, 3000, 0, 3000],
    ['Retry-After, the most jitter', 1, 3000, 0.999_999, 4500],
    ['Retry-After: 0 is still spread', 2, 0, 0.5, 25],
    ['no Retry-After, first attempt, least', 1, undefined, 0, 50],
    ['no Retry-After, first attempt, most', 1, undefined, 0.999_999, 100],
    ['no Retry-After, third attempt doubles twice', 3, undefined, 0, 200],
  ])('%s', (_what, attempt, retryAfter, random, expected) => {
    expect(retryDelayMs(policy, attempt, retryAfter, random)).toBe(expected);
  });

  it('never waits less than Retry-After', () => {
    for (const r of [0, 0.1, 0.5, 0.9]) expect(retryDelayMs(policy, 1, 2000, r)).toBeGreaterThanOrEqual(2000);
  });

  it('gives up when the attempts are spent', () => {
    expect(retryDelayMs(policy, 4, 1000, 0)).toBeUndefined();
    expect(retryDelayMs({ ...policy, maxAttempts: 1 }, 1, undefined, 0)).toBeUndefined();
  });

  it('gives up at once when Retry-After is longer than the policy accepts', () => {
    expect(retryDelayMs(policy, 1, 10_001, 0)).toBeUndefined();
  });

  it('caps the backoff at maxDelayMs', () => {
    expect(retryDelayMs({ ...policy, maxAttempts: 100 }, 30, undefined, 0.999_999)).toBe(10_000);
  });

  it('has a sane default', () => {
    expect(defaultRetryPolicy.maxAttempts).toBeGreaterThan(1);
  });
});

describe('isSafeToRepeat', () => {
  it.each([
    ['GET', {}, {}, true],
    ['HEAD', {}, {}, true],
    ['PUT', { 'if-match': '"3"' }, {}, true],
    ['PUT', { 'if-none-match': '*' }, {}, true],
    ['DELETE', { 'if-match': '"3"' }, {}, true],
    ['PUT', {}, { blockUpload: true }, true],
    ['PUT', {}, {}, false],
    ['DELETE', {}, {}, false],
    ['POST', {}, {}, false],
    ['PATCH', { 'if-match': '"3"' }, {}, false],
    ['PUT', {}, { blockUpload: true, streamBody: true }, false],
    ['GET', {}, { streamBody: true }, false],
  ])('%s %j %j → %s', (method, headers, options, safe) => {
    expect(isSafeToRepeat(method, headers, options)).toBe(safe);
  });
});
