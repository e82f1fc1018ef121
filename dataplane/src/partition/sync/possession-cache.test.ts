import { describe, expect, it } from 'vitest';
import { PossessionCache } from './possession-cache.ts';

const sha = (n: number): string => n.toString(16).padStart(64, '0');

describe('PossessionCache', () => {
  it('recalls a proof for the user who uploaded, not for another user', () => {
    const cache = new PossessionCache();
    cache.remember('alice', sha(1), { stateVersion: 7, size: 4096 });
    expect(cache.recall('alice', sha(1))).toEqual({ stateVersion: 7, size: 4096 });
    expect(cache.recall('bob', sha(1))).toBeUndefined();
    expect(cache.recall('alice', sha(2))).toBeUndefined();
  });

  it('forgets the proofs it is told to', () => {
    const cache = new PossessionCache();
    cache.remember('alice', sha(1), { stateVersion: 0, size: 1 });
    cache.remember('alice', sha(2), { stateVersion: 0, size: 1 });
    cache.forget('alice', [sha(1)]);
    expect(cache.recall('alice', sha(1))).toBeUndefined();
    expect(cache.recall('alice', sha(2))).toBeDefined();
  });

  it('stays within its capacity, forgetting the least recently remembered first', () => {
    const cache = new PossessionCache(3);
    for (let i = 1; i <= 3; i++) cache.remember('alice', sha(i), { stateVersion: i, size: i });
    // Remembered again: it becomes the newest.
    cache.remember('alice', sha(1), { stateVersion: 10, size: 1 });
    cache.remember('alice', sha(4), { stateVersion: 4, size: 4 });
    expect(cache.size).toBe(3);
    expect(cache.recall('alice', sha(2))).toBeUndefined();
    expect(cache.recall('alice', sha(1))).toEqual({ stateVersion: 10, size: 1 });
    expect(cache.recall('alice', sha(4))).toBeDefined();
  });
});
