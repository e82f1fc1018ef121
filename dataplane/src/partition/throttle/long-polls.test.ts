import { describe, expect, it } from 'vitest';
import { LongPollLimit } from './long-polls.ts';

describe('LongPollLimit', () => {
  it.each([1, 2, 4])('lets a device hold %d long polls and refuses one more', (bound) => {
    const limit = new LongPollLimit(bound);
    const releases = Array.from({ length: bound }, () => limit.tryAcquire('d1'));
    expect(releases.every((r) => r !== undefined)).toBe(true);
    expect(limit.tryAcquire('d1')).toBeUndefined();
    expect(limit.openFor('d1')).toBe(bound);
  });

  it('gives the place back on release, once, however often release is called', () => {
    const limit = new LongPollLimit(2);
    const first = limit.tryAcquire('d1')!;
    const second = limit.tryAcquire('d1')!;
    expect(limit.tryAcquire('d1')).toBeUndefined();
    first();
    first();
    expect(limit.openFor('d1')).toBe(1);
    const third = limit.tryAcquire('d1');
    expect(third).toBeDefined();
    expect(limit.tryAcquire('d1')).toBeUndefined();
    second();
    third!();
    expect(limit.openFor('d1')).toBe(0);
    expect(limit.devices).toBe(0);
  });

  it('bounds each device on its own', () => {
    const limit = new LongPollLimit(1);
    expect(limit.tryAcquire('d1')).toBeDefined();
    expect(limit.tryAcquire('d2')).toBeDefined();
    expect(limit.tryAcquire('d1')).toBeUndefined();
    expect(limit.devices).toBe(2);
  });
});
