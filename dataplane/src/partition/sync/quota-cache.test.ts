import { describe, expect, it } from 'vitest';
import type { UserRecord } from '../../stores/metadata-store.ts';
import { QuotaCache, quotaCacheMillis } from './quota-cache.ts';

function store(quotas: Record<string, number | null | undefined>) {
  let reads = 0;
  return {
    reads: () => reads,
    set: (id: string, q: number | null) => void (quotas[id] = q),
    getUser: (id: string): Promise<UserRecord | undefined> => {
      reads++;
      return Promise.resolve(id in quotas ? ({ id, name: id, quotaBytes: quotas[id] } as UserRecord) : undefined);
    },
  };
}

describe('QuotaCache', () => {
  it('reads a quota once per interval, whatever many uploads ask at once', async () => {
    let now = 0;
    const users = store({ alice: 100 });
    const cache = new QuotaCache(users, () => now);
    expect(await Promise.all([cache.quotaOf('alice'), cache.quotaOf('alice'), cache.quotaOf('alice')])).toEqual([100, 100, 100]);
    expect(users.reads()).toBe(1);
    users.set('alice', 200);
    now += quotaCacheMillis - 1;
    expect(await cache.quotaOf('alice')).toBe(100);
    now += 1;
    expect(await cache.quotaOf('alice')).toBe(200);
    expect(users.reads()).toBe(2);
  });

  it('answers null (unlimited) without a quota or without a user, and a quota set here at once', async () => {
    const users = store({ bob: undefined });
    const cache = new QuotaCache(users, () => 0);
    expect(await cache.quotaOf('bob')).toBeNull();
    expect(await cache.quotaOf('nobody')).toBeNull();
    cache.set('bob', 5);
    expect(await cache.quotaOf('bob')).toBe(5);
  });
});
