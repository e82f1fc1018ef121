import { describe, expect, it } from 'vitest';
import { GcPacer } from '@meshwork/contract/gc-pacer';
import { BlockBuffers } from './block-buffers.ts';

describe('BlockBuffers', () => {
  it('hands out 4 MiB buffers, takes back only its own, once each, and keeps a bounded number', () => {
    const pool = new BlockBuffers(2);
    const a = pool.take();
    const b = pool.take();
    const c = pool.take();
    expect(a.byteLength).toBe(4 * 1024 * 1024);
    pool.give(a.subarray(0, 10)); // a block shorter than 4 MiB lies in the same buffer
    pool.give(a); // a second release of the same buffer is ignored
    pool.give(new Uint8Array(4 * 1024 * 1024)); // not one of its own
    expect(pool.free).toBe(1);
    pool.give(b);
    pool.give(c); // over the bound: left to the garbage collector
    expect(pool.free).toBe(2);
    const again = [pool.take(), pool.take()];
    expect(again.some((x) => x.buffer === a.buffer) && again.some((x) => x.buffer === b.buffer)).toBe(true);
    expect(pool.take().buffer).not.toBe(c.buffer);
  });

  it('asks for a full collection when it lets go of 8 MiB or more of free buffers', () => {
    const calls: { type: string }[] = [];
    const pool = new BlockBuffers(8, new GcPacer((options) => void calls.push(options)));
    const [a, b, c] = [pool.take(), pool.take(), pool.take()];
    pool.give(a);
    pool.clear(); // 4 MiB: below the pace
    expect(calls).toEqual([]);
    pool.give(b);
    pool.give(c);
    pool.clear();
    expect(calls).toEqual([{ type: 'major' }]);
    pool.clear(); // nothing free
    expect(calls).toHaveLength(1);
  });

  it('lets go of its free buffers when cleared, and still takes back those handed out before', () => {
    const pool = new BlockBuffers();
    const a = pool.take();
    const b = pool.take();
    pool.give(a);
    pool.clear();
    expect(pool.free).toBe(0);
    pool.give(b);
    expect(pool.free).toBe(1);
    expect(pool.take().buffer).toBe(b.buffer);
  });
});
