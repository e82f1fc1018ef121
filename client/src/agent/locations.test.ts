// LocationBatches: a round's small downloads ask for their URLs a batch at a time, once per
// batch while the URLs are fresh, again when they are about to expire, and not at all from a
// partition that gives none.
import { ApiError } from '@meshwork/contract/errors';
import { describe, expect, it } from 'vitest';
import { NetworkError } from '../errors.ts';
import type { BlockLocations } from '../types.ts';
import { LocationBatches, maxLocationsAsked } from './locations.ts';

const sha = (i: number): string => i.toString(16).padStart(64, '0');

/** A partition that answers every block with a URL living `lifetimeMs`, and records what was asked. */
function partition(lifetimeMs = 120_000, unreadable: ReadonlySet<string> = new Set()) {
  const asked: string[][] = [];
  const ask = (shas: readonly string[]): Promise<BlockLocations> => {
    asked.push([...shas]);
    const readable = shas.filter((s) => !unreadable.has(s));
    return Promise.resolve({
      blocks: readable.map((s) => ({ sha256: s, size: 4096, url: `https://store.test/${s}?n=${asked.length}` })),
      unreadable: shas.filter((s) => unreadable.has(s)),
      expiresAt: new Date(Date.now() + lifetimeMs).toISOString(),
    });
  };
  return { asked, ask };
}

describe('LocationBatches', () => {
  it('asks once per batch of at most 500, when a block of the batch is first wanted', async () => {
    const p = partition();
    const shas = Array.from({ length: 1200 }, (_, i) => sha(i));
    const batches = new LocationBatches(shas, p.ask);
    expect(batches.size).toBe(1200);
    expect(p.asked).toHaveLength(0);
    const first = await Promise.all(shas.slice(0, 600).map((s) => batches.urlFor(s)));
    expect(first.every((u, i) => u?.startsWith(`https://store.test/${shas[i]}`))).toBe(true);
    expect(p.asked.map((a) => a.length)).toEqual([maxLocationsAsked, maxLocationsAsked]);
    expect(p.asked[0]).toEqual(shas.slice(0, 500));
    await batches.urlFor(shas[1199]!);
    expect(p.asked.map((a) => a.length)).toEqual([500, 500, 200]);
    expect(p.asked[2]).toEqual(shas.slice(1000));
  });

  it('names each block once, and answers nothing for a block it was not given', async () => {
    const p = partition();
    const batches = new LocationBatches([sha(1), sha(2), sha(1), sha(3)], p.ask);
    expect(batches.size).toBe(3);
    expect(await batches.urlFor(sha(9))).toBeUndefined();
    expect(p.asked).toHaveLength(0);
    await batches.urlFor(sha(3));
    expect(p.asked).toEqual([[sha(1), sha(2), sha(3)]]);
  });

  it('answers no URL for an unreadable block', async () => {
    const p = partition(120_000, new Set([sha(2)]));
    const batches = new LocationBatches([sha(1), sha(2)], p.ask);
    expect(await batches.urlFor(sha(2))).toBeUndefined();
    expect(await batches.urlFor(sha(1))).toBeDefined();
    expect(p.asked).toHaveLength(1);
  });

  it('asks the batch again once its URLs are about to expire', async () => {
    const p = partition(120_000);
    let now = 1_000_000;
    const batches = new LocationBatches([sha(1), sha(2)], p.ask, () => now);
    const before = await batches.urlFor(sha(1));
    now += 90_000;
    expect(await batches.urlFor(sha(2))).toContain('n=1');
    expect(p.asked).toHaveLength(1);
    now += 15_000; // less than 20 s left
    const after = await batches.urlFor(sha(1));
    expect(p.asked).toHaveLength(2);
    expect(after).not.toBe(before);
    expect(after).toContain('n=2');
  });

  it('asks again at most once per block, even when URLs never live long enough', async () => {
    const p = partition(5_000);
    const batches = new LocationBatches([sha(1), sha(2)], p.ask);
    expect(await batches.urlFor(sha(1))).toContain('n=1');
    expect(await batches.urlFor(sha(2))).toContain('n=2');
    expect(p.asked).toHaveLength(2);
  });

  it('gives up on a partition without the route (404, 405) or without redirects (no URLs)', async () => {
    for (const refusal of [new ApiError('not_found', 'no route'), new ApiError('method_not_allowed', 'no route')]) {
      let calls = 0;
      const batches = new LocationBatches(
        Array.from({ length: 600 }, (_, i) => sha(i)),
        () => {
          calls++;
          return Promise.reject(refusal);
        },
      );
      expect(await batches.urlFor(sha(0))).toBeUndefined();
      expect(await batches.urlFor(sha(599))).toBeUndefined();
      expect(calls).toBe(1);
    }
    let calls = 0;
    const batches = new LocationBatches(
      Array.from({ length: 600 }, (_, i) => sha(i)),
      (shas) => {
        calls++;
        return Promise.resolve({ blocks: shas.map((s) => ({ sha256: s, size: 1 })), unreadable: [] });
      },
    );
    expect(await batches.urlFor(sha(0))).toBeUndefined();
    expect(await batches.urlFor(sha(599))).toBeUndefined();
    expect(calls).toBe(1);
  });

  it('raises any other failure to the block that asked, and asks again for the next', async () => {
    let calls = 0;
    const p = partition();
    const batches = new LocationBatches([sha(1), sha(2)], async (shas) => {
      calls++;
      if (calls === 1) throw new NetworkError('connection reset', { cause: undefined });
      return p.ask(shas);
    });
    await expect(batches.urlFor(sha(1))).rejects.toBeInstanceOf(NetworkError);
    expect(await batches.urlFor(sha(2))).toContain(sha(2));
    expect(calls).toBe(2);
  });

  it('shares one ask among blocks that want the same batch at once', async () => {
    const p = partition();
    const batches = new LocationBatches([sha(1), sha(2), sha(3)], p.ask);
    const urls = await Promise.all([batches.urlFor(sha(1)), batches.urlFor(sha(2)), batches.urlFor(sha(3))]);
    expect(urls.every((u) => u !== undefined)).toBe(true);
    expect(p.asked).toHaveLength(1);
  });
});
