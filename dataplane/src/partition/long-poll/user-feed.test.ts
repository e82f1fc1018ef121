import { describe, expect, it } from 'vitest';
import type { Role } from '../../stores/metadata-store.ts';
import { UserFeed, type FeedRead } from './user-feed.ts';

function read(revision: number, memberships: Record<string, [Role, number]>, heads: Record<string, number> = {}): FeedRead {
  return {
    revision,
    memberships: new Map(Object.entries(memberships).map(([id, [role, rev]]) => [id, { role, revision: rev }])),
    heads: new Map(Object.entries(heads)),
  };
}

function loaded(revision: number, members: Record<string, number>): UserFeed {
  const feed = new UserFeed('u1');
  feed.mergeMemberships(new Map(Object.entries(members).map(([id, rev]) => [id, { revision: rev }])), revision);
  return feed;
}

describe('UserFeed.mergeMemberships', () => {
  it('takes a first read as it is and trusts memory from its revision on', () => {
    const feed = new UserFeed('u1');
    expect(feed.quietAfter(100)).toBe(false);
    const result = feed.mergeMemberships(new Map([['o1', { revision: 10 }], ['o2', { revision: 20 }]]), 50);
    expect(result).toEqual({ subscribe: ['o1', 'o2'], unsubscribe: [] });
    expect(Object.fromEntries(feed.members)).toEqual({ o1: 10, o2: 20 });
    expect(feed.quietAfter(49)).toBe(false);
    expect(feed.quietAfter(50)).toBe(true);
  });

  it.each<[string, Record<string, number>, [string, boolean, number][], Record<string, number>, number, Record<string, number>, string[], string[]]>([
    // name, members before, events during the read, read (id → revision), read revision, members after, subscribe, unsubscribe
    ['an object gone from the index is dropped', { o1: 10, o2: 20 }, [], { o1: 10 }, 50, { o1: 10 }, [], ['o2']],
    ['an object added after the read survives it', { o1: 10 }, [['o2', true, 60]], { o1: 10 }, 50, { o1: 10, o2: 60 }, [], []],
    ['an object removed after the read stays removed', { o1: 10, o2: 20 }, [['o2', false, 60]], { o1: 10, o2: 20 }, 50, { o1: 10 }, [], []],
    ['a membership re-added before the read is taken from it', { o1: 10 }, [], { o1: 10, o2: 45 }, 50, { o1: 10, o2: 45 }, ['o2'], []],
    ['a read older than the last merge changes nothing', { o1: 10 }, [], {}, 5, { o1: 10 }, [], []],
  ])('%s', (_name, before, events, readMembers, readRevision, after, subscribe, unsubscribe) => {
    const feed = loaded(8, before);
    for (const [id, present, revision] of events) feed.onMembership(id, present, revision);
    const result = feed.mergeMemberships(new Map(Object.entries(readMembers).map(([id, rev]) => [id, { revision: rev }])), readRevision);
    expect(Object.fromEntries(feed.members)).toEqual(after);
    expect(result).toEqual({ subscribe, unsubscribe });
  });
});

describe('UserFeed.onMembership', () => {
  it.each<[string, [string, boolean, number][], (string | undefined)[], Record<string, number>, Record<string, number>]>([
    ['added', [['o2', true, 60]], ['subscribe'], { o1: 10, o2: 60 }, {}],
    ['role changed', [['o1', true, 60]], [undefined], { o1: 60 }, {}],
    ['removed', [['o1', false, 60]], ['unsubscribe'], {}, { o1: 60 }],
    ['removed then added again', [['o1', false, 60], ['o1', true, 61]], ['unsubscribe', 'subscribe'], { o1: 61 }, {}],
    ['an event already in the read is ignored', [['o1', false, 50], ['o3', true, 40]], [undefined, undefined], { o1: 10 }, {}],
  ])('%s', (_name, events, actions, members, removed) => {
    const feed = loaded(50, { o1: 10 });
    expect(events.map(([id, present, revision]) => feed.onMembership(id, present, revision))).toEqual(actions);
    expect(Object.fromEntries(feed.members)).toEqual(members);
    expect(Object.fromEntries(feed.removed)).toEqual(removed);
  });

  it('makes memory say "changed" after a membership event', () => {
    const feed = loaded(50, { o1: 10 });
    expect(feed.quietAfter(50)).toBe(true);
    feed.onMembership('o2', true, 55);
    expect(feed.quietAfter(54)).toBe(false);
    expect(feed.quietAfter(55)).toBe(true);
  });
});

describe('UserFeed.changesSince', () => {
  it.each<[string, number, FeedRead, Record<string, number>, unknown[]]>([
    ['nothing after the cursor', 100, read(120, { o1: ['owner', 10] }, { o1: 90 }), {}, []],
    ['an entry change', 100, read(120, { o1: ['owner', 10], o2: ['reader', 11] }, { o1: 101, o2: 100 }), {}, [{ id: 'o1', role: 'owner' }]],
    ['a new membership', 100, read(120, { o1: ['writer', 110] }, { o1: 0 }), {}, [{ id: 'o1', role: 'writer' }]],
    ['cursor 0 lists every object', 0, read(120, { b: ['reader', 5], a: ['owner', 3] }, { a: 0, b: 0 }), {}, [{ id: 'a', role: 'owner' }, { id: 'b', role: 'reader' }]],
    ['a removal after the cursor', 100, read(120, {}, {}), { o9: 105 }, [{ id: 'o9', removed: true }]],
    ['a removal before the cursor', 100, read(120, {}, {}), { o9: 95 }, []],
    ['a removal undone by the read', 100, read(120, { o9: ['reader', 90] }, { o9: 0 }), { o9: 105 }, []],
  ])('%s', (_name, cursor, feedRead, removed, expected) => {
    const feed = new UserFeed('u1');
    for (const [id, revision] of Object.entries(removed)) {
      feed.members.set(id, 1);
      feed.onMembership(id, false, revision);
    }
    expect(feed.changesSince(cursor, feedRead)).toEqual(expected);
  });
});

describe('UserFeed quiet thresholds', () => {
  it('lets a poll wait past what a read found quiet for the same cursor only', () => {
    const feed = loaded(50, { o1: 10 });
    feed.recordQuiet(30, 50);
    expect(feed.thresholdFor(30)).toBe(50);
    expect(feed.thresholdFor(31)).toBe(31);
    feed.recordQuiet(30, 60);
    expect(feed.thresholdFor(30)).toBe(60);
  });

  it('remembers a bounded number of quiet cursors, dropping the oldest', () => {
    const feed = loaded(50, { o1: 10 });
    for (let cursor = 1; cursor <= 65; cursor++) feed.recordQuiet(cursor, 100);
    expect(feed.thresholdFor(1)).toBe(1);
    expect(feed.thresholdFor(2)).toBe(100);
    expect(feed.thresholdFor(65)).toBe(100);
  });

  it('says "changed" for a head change after the threshold', () => {
    const feed = loaded(50, { o1: 10 });
    feed.onObjectChange(70);
    expect(feed.quietAfter(60)).toBe(false);
    expect(feed.quietAfter(70)).toBe(true);
  });

  it('distrusts memory until the next read after invalidate', () => {
    const feed = loaded(50, { o1: 10 });
    const generation = feed.generation;
    feed.invalidate();
    expect(feed.generation).toBe(generation + 1);
    expect(feed.quietAfter(1000)).toBe(false);
    feed.mergeMemberships(new Map([['o1', { revision: 10 }]]), 80);
    expect(feed.quietAfter(79)).toBe(false);
    expect(feed.quietAfter(80)).toBe(true);
  });
});
