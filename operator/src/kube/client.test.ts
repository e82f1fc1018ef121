// Which API answers the client repeats, and how long it waits: pure rules, table-tested.
import { describe, expect, it } from 'vitest';
import { defaultKubeRetryPolicy, isRetryableKubeAnswer, kubeRetryDelayMs, parseRetryAfter } from './client.ts';

describe('isRetryableKubeAnswer', () => {
  it.each([
    ['create', 429, true],
    ['get', 429, true],
    ['get', 503, true],
    ['list', 503, true],
    ['apply', 503, true],
    ['update', 503, true],
    ['delete', 503, true],
    // A create that reached the server may have been applied: a second one would be a 409.
    ['create', 503, false],
    ['get', 500, false],
    ['get', 409, false],
    ['list', 410, false],
  ])('%s answered %d: %s', (verb, status, retry) => {
    expect(isRetryableKubeAnswer(verb, status)).toBe(retry);
  });
});

describe('kubeRetryDelayMs', () => {
  it.each([
    // Retry-After plus jitter of up to a quarter of it (at least 100 ms of spread).
    [1, 0, 1, 1000],
    [1, 0.5, 1, 1125],
    [1, 0.999, 4, 4999],
    [1, 0.5, 0, 50],
    // Capped: a server asking for an hour gets 10 s.
    [1, 0.9, 3600, 10_000],
    // Without Retry-After: full jitter under a doubling cap.
    [1, 0.5, undefined, 100],
    [3, 0.5, undefined, 400],
    [30, 0.5, undefined, 5000],
  ])('attempt %d, random %d, Retry-After %s s: %d ms', (attempt, random, retryAfter, ms) => {
    expect(kubeRetryDelayMs(defaultKubeRetryPolicy, attempt, random, retryAfter)).toBe(ms);
  });
});

describe('parseRetryAfter', () => {
  it.each([
    ['1', 1],
    [' 30 ', 30],
    ['Wed, 21 Oct 2015 07:28:00 GMT', undefined],
    ['-1', undefined],
    ['1.5', undefined],
    [undefined, undefined],
  ])('%s is %s', (header, seconds) => {
    expect(parseRetryAfter(header)).toBe(seconds);
  });
});
