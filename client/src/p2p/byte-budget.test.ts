// The byte bound of the peer listener: who waits, in what order, and what a release lets in.
import { describe, expect, it } from 'vitest';
import { byteBudget } from './byte-budget.ts';

/** Whether `promise` has settled once the queued callbacks ran. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('byteBudget', () => {
  it('lets requests in while they fit, and the next one when enough is released, first come first served', async () => {
    const budget = byteBudget(10);
    const a = await budget.acquire(4);
    const b = await budget.acquire(4);
    expect(budget.held()).toBe(8);
    const c = budget.acquire(4);
    const d = budget.acquire(1); // fits, but waits behind c
    expect(await settled(c)).toBe(false);
    expect(await settled(d)).toBe(false);
    a();
    expect(await settled(c)).toBe(true);
    expect(await settled(d)).toBe(true);
    expect(budget.held()).toBe(9);
    b();
    (await c)();
    (await d)();
    expect(budget.held()).toBe(0);
  });

  it('serves a request larger than the bound alone rather than never', async () => {
    const budget = byteBudget(4);
    const small = await budget.acquire(1);
    const large = budget.acquire(16);
    expect(await settled(large)).toBe(false);
    small();
    const release = await large;
    expect(budget.held()).toBe(16);
    const next = budget.acquire(1);
    expect(await settled(next)).toBe(false);
    release();
    expect(await settled(next)).toBe(true);
  });

  it('counts a release once however often it is called', async () => {
    const budget = byteBudget(8);
    const release = await budget.acquire(8);
    release();
    release();
    expect(budget.held()).toBe(0);
    await budget.acquire(8);
    expect(budget.held()).toBe(8);
  });
});
