// The gateway's adaptive concurrency limit: it holds at low load, grows while in use and fast,
// shrinks on the partition's 503s and on slow answers under load, within its bounds.
import { describe, expect, it } from 'vitest';
import { AdaptiveLimit } from './admission.ts';

function fill(limit: AdaptiveLimit, n: number): void {
  for (let i = 0; i < n; i++) expect(limit.tryAcquire()).toBe(true);
}

describe('AdaptiveLimit', () => {
  it('refuses past the limit and admits again once a place is free', () => {
    const limit = new AdaptiveLimit({ min: 1, max: 100 }, 4);
    fill(limit, 4);
    expect(limit.tryAcquire()).toBe(false);
    limit.complete({ overloaded: false, latencyMs: 1 }, 0);
    expect(limit.tryAcquire()).toBe(true);
  });

  it('does not move at low load, slow answers or not', () => {
    const limit = new AdaptiveLimit({ min: 1, max: 100 }, 10);
    for (let t = 0; t < 1000; t++) {
      fill(limit, 1);
      limit.complete({ overloaded: false, latencyMs: t % 2 === 0 ? 1 : 500 }, t * 10);
    }
    expect(limit.limit).toBe(10);
  });

  it('grows while in use and fast, up to its maximum', () => {
    const limit = new AdaptiveLimit({ min: 1, max: 12 }, 10);
    for (let t = 0; t < 2000; t++) {
      while (limit.tryAcquire());
      limit.complete({ overloaded: false, latencyMs: 2 }, t);
    }
    expect(limit.limit).toBe(12);
  });

  it("shrinks on the partition's 503s, at most once per 100 ms, down to its minimum", () => {
    const limit = new AdaptiveLimit({ min: 5, max: 100 }, 50);
    fill(limit, 3);
    limit.complete({ overloaded: true, latencyMs: 1 }, 1000);
    limit.complete({ overloaded: true, latencyMs: 1 }, 1050);
    expect(limit.limit).toBe(45);
    for (let t = 0; t < 100; t++) {
      fill(limit, 1);
      limit.complete({ overloaded: true, latencyMs: 1 }, 2000 + t * 100);
    }
    expect(limit.limit).toBe(5);
  });

  it('shrinks under load when answers take well above the baseline', () => {
    const limit = new AdaptiveLimit({ min: 1, max: 100 }, 20);
    fill(limit, 20);
    limit.complete({ overloaded: false, latencyMs: 2 }, 0);
    fill(limit, 1);
    limit.complete({ overloaded: false, latencyMs: 50 }, 200);
    expect(limit.limit).toBe(18);
  });
});
