import { describe, expect, it } from 'vitest';
import { ChangeLog } from './change-log.ts';

const limits = { perObject: 1000, total: 10_000 };

describe('ChangeLog', () => {
  it.each([
    [10, 100, ['a', 'b', 'c']],
    [11, 100, ['b', 'c', 'a']],
    [12, 100, ['c', 'a']],
    [14, 100, []],
    [10, 12, ['a', 'b']],
    [10, 11, ['a']],
  ])('returns the distinct paths changed after %i up to %i', (since, upTo, paths) => {
    const log = new ChangeLog(10, limits);
    log.record('o1', 'a', 11);
    log.record('o1', 'b', 12);
    log.record('o2', 'x', 12);
    log.record('o1', 'c', 13);
    log.record('o1', 'a', 14);
    expect(log.changedPaths('o1', since, upTo)).toEqual(paths);
  });

  it('cannot answer from before its horizon, and answers an unknown object with nothing', () => {
    const log = new ChangeLog(10, limits);
    expect(log.changedPaths('o1', 9, 100)).toBeUndefined();
    expect(log.changedPaths('o1', 10, 100)).toEqual([]);
  });

  it('raises an object horizon when it trims that object', () => {
    const log = new ChangeLog(0, { perObject: 4, total: 100 });
    for (let r = 1; r <= 5; r++) log.record('o1', `p${r}`, r);
    // 5 > 4: the older half (2) was dropped, so revisions 1 and 2 are gone.
    expect(log.changedPaths('o1', 1, 100)).toBeUndefined();
    expect(log.changedPaths('o1', 2, 100)).toEqual(['p3', 'p4', 'p5']);
    expect(log.changedPaths('o2', 0, 100)).toEqual([]);
  });

  it('restarts when the total limit is exceeded', () => {
    const log = new ChangeLog(0, { perObject: 100, total: 3 });
    for (let r = 1; r <= 4; r++) log.record(`o${r}`, 'p', r);
    expect(log.horizon).toBe(4);
    expect(log.changedPaths('o1', 0, 100)).toBeUndefined();
    expect(log.changedPaths('o1', 4, 100)).toEqual([]);
  });

  it('forgets a deleted object', () => {
    const log = new ChangeLog(0, limits);
    log.record('o1', 'p', 1);
    log.forget('o1');
    expect(log.changedPaths('o1', 0, 100)).toEqual([]);
  });
});
