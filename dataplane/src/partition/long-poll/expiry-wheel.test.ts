import { describe, expect, it } from 'vitest';
import { ExpiryWheel, type Expirable } from './expiry-wheel.ts';

interface Item extends Expirable {
  name: string;
}

function item(name: string): Item {
  return { name, expiryBucket: -1 };
}

function names(items: Item[]): string[] {
  return items.map((i) => i.name).sort();
}

describe('ExpiryWheel', () => {
  it.each([
    // deadline, checked at, expired?
    [1000, 999, false],
    [1000, 1000, true],
    [1050, 1099, false],
    [1050, 1100, true],
    [1001, 1100, true],
    [0, 0, true],
    [500, 2000, true],
  ])('an item due at %i checked at %i expired: %s', (deadline, at, expired) => {
    const wheel = new ExpiryWheel<Item>(100, 0);
    const a = item('a');
    wheel.add(a, deadline);
    expect(names(wheel.expire(at))).toEqual(expired ? ['a'] : []);
    expect(wheel.size).toBe(expired ? 0 : 1);
    expect(a.expiryBucket === -1).toBe(expired);
  });

  it('expires each item once, in the tick that reaches its deadline', () => {
    const wheel = new ExpiryWheel<Item>(100, 10_000);
    const items = [item('a'), item('b'), item('c'), item('d')];
    wheel.add(items[0]!, 10_100);
    wheel.add(items[1]!, 10_150);
    wheel.add(items[2]!, 10_150);
    wheel.add(items[3]!, 12_000);
    expect(names(wheel.expire(10_100))).toEqual(['a']);
    expect(names(wheel.expire(10_100))).toEqual([]);
    expect(names(wheel.expire(10_250))).toEqual(['b', 'c']);
    expect(wheel.size).toBe(1);
    expect(names(wheel.expire(11_999))).toEqual([]);
    expect(names(wheel.expire(12_000))).toEqual(['d']);
    expect(wheel.size).toBe(0);
  });

  it('forgets a removed item and counts it out once', () => {
    const wheel = new ExpiryWheel<Item>(100, 0);
    const a = item('a');
    const b = item('b');
    wheel.add(a, 500);
    wheel.add(b, 500);
    expect(wheel.remove(a)).toBe(true);
    expect(wheel.remove(a)).toBe(false);
    expect(wheel.size).toBe(1);
    expect(names(wheel.expire(1000))).toEqual(['b']);
    expect(wheel.remove(b)).toBe(false);
  });

  it('moves an item that is added again to its new deadline', () => {
    const wheel = new ExpiryWheel<Item>(100, 0);
    const a = item('a');
    wheel.add(a, 500);
    wheel.add(a, 900);
    expect(wheel.size).toBe(1);
    expect(names(wheel.expire(600))).toEqual([]);
    expect(names(wheel.expire(900))).toEqual(['a']);
  });

  it('expires an item added with a deadline already past at the next tick', () => {
    const wheel = new ExpiryWheel<Item>(100, 0);
    wheel.expire(5000);
    wheel.add(item('late'), 1000);
    expect(names(wheel.expire(5000))).toEqual([]);
    expect(names(wheel.expire(5100))).toEqual(['late']);
  });

  it('skips a long idle stretch without visiting its buckets one by one', () => {
    const wheel = new ExpiryWheel<Item>(100, 0);
    wheel.expire(1e12);
    wheel.add(item('a'), 1e12 + 100);
    const started = performance.now();
    expect(names(wheel.expire(1e12 + 100))).toEqual(['a']);
    expect(performance.now() - started).toBeLessThan(50);
  });
});
