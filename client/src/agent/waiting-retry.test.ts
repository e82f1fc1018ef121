// How soon a file waiting for a holder is tried again: 1 s after the first pass that found it
// waiting (a holder that just committed announces it once its own pass ends), doubling, capped.
import { describe, expect, it } from 'vitest';
import { waitingRetryDelayMs } from './engine.ts';

describe('waitingRetryDelayMs', () => {
  it.each([
    [1, 10_000, 1000],
    [2, 10_000, 2000],
    [3, 10_000, 4000],
    [4, 10_000, 8000],
    [5, 10_000, 10_000],
    [500, 10_000, 10_000],
    [1, 300, 300],
    [3, 300, 300],
    [0, 10_000, 1000],
  ])('after %i passes in a row with a file waiting, at most %i ms: %i ms', (passes, maxMs, expected) => {
    expect(waitingRetryDelayMs(passes, maxMs)).toBe(expected);
  });
});
