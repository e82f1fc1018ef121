import { describe, expect, it } from 'vitest';
import type { Role } from '../../stores/metadata-store.ts';
import { liveObjects, UserFeed, type FeedRead } from './user-feed.ts';

function read(revision: number, memberships: Record<string, [Role, number]>, heads: Record<string, number> = {}): FeedRead {
  return {
    revision,
    memberships: new Map(Object.entries(memberships).map(([id, [role, rev]]) => [id, { role, revision: rev }])),
    heads: new Map(Object.entries(heads)),
  };
}

/** A membership index as a read returns it (every role 'reader'). */
function index(members: Record<string, number>): Map<string, { role: Role; revision: number }> {
  return new Map(Object.entries(members).map(([id, rev]) => [id, { role: 'reader', revision: rev }]));
}

function loaded(revision: number, members: Record<string, number>): UserFeed {
  const feed = new UserFeed('u1');
  feed.mergeMemberships(index(members), revision);
  return feed;
}

/** Object id → membership revision, to compare. */
function revisions(feed: UserFeed): Record<string, number> {
  return Object.fromEntries([...feed.members].map(([id, m]) => [id, m.revision]));
}

function role(present: boolean): Role | undefined {
  return present ? 'writer' : undefined;
}

describe('UserFeed.mergeMemberships', () => {
  it('takes a first read as it is and trusts memory from its revision on', () => {
    const feed = new UserFeed('u1');
    expect(feed.quietAfter(100)).toBe(false);
    const result = feed.mergeMemberships(index({ o1: 10, o2: 20 }), 50);
    expect(result).toEqual({ subscribe: ['o1', 'o2'], unsubscribe: [] });
    expect(revisions(feed)).toEqual({ o1: 10, o2: 20 });
    expect(feed.quietAfter(49)).toBe(false);
    expect(feed.quietAfter(50)).toBe(true);
  });

  it.each<
    [
      string,
      Record<string, number>,
      [string, boolean, number][],
      Record<string, number>,
      number,
      Record<string, number>,
      string[],
      string[],
    ]
  >([
    // name, members before, events during the read, read (id → revision), read revision, members after, subscribe, unsubscribe
    ['an object gone from the index is dropped', { o1: 10, o2: 20 }, [], { o1: 10 }, 50, { o1: 10 }, [], ['o2']],
    ['an object added after the read survives it', { o1: 10 }, [['o2', true, 60]], { o1: 10 }, 50, { o1: 10, o2: 60 }, [], []],
    ['an object removed after the read stays removed', { o1: 10, o2: 20 }, [['o2', false, 60]], { o1: 10, o2: 20 }, 50, { o1: 10 }, [], []],
    ['a membership re-added before the read is taken from it', { o1: 10 }, [], { o1: 10, o2: 45 }, 50, { o1: 10, o2: 45 }, ['o2'], []],
    ['a read older than the last merge changes nothing', { o1: 10 }, [], {}, 5, { o1: 10 }, [], []],
  ])('%s', (_name, before, events, readMembers, readRevision, after, subscribe, unsubscribe) => {
    const feed = loaded(8, before);
    for (const [id, present, revision] of events) feed.onMembership(id, role(present), revision);
    const result = feed.mergeMemberships(index(readMembers), readRevision);
    expect(revisions(feed)).toEqual(after);
    expect(result).toEqual({ subscribe, unsubscribe });
  });
});

describe('UserFeed.onMembership', () => {
  it.each<[string, [string, boolean, number][], (string | undefined)[], Record<string, number>, Record<string, number>]>([
    ['added', [['o2', true, 60]], ['subscribe'], { o1: 10, o2: 60 }, {}],
    ['role changed', [['o1', true, 60]], [undefined], { o1: 60 }, {}],
    ['removed', [['o1', false, 60]], ['unsubscribe'], {}, { o1: 60 }],
    [
      'removed then added again',
      [
        ['o1', false, 60],
        ['o1', true, 61],
      ],
      ['unsubscribe', 'subscribe'],
      { o1: 61 },
      {},
    ],
    [
      'an event already in the read is ignored',
      [
        ['o1', false, 50],
        ['o3', true, 40],
      ],
      [undefined, undefined],
      { o1: 10 },
      {},
    ],
  ])('%s', (_name, events, actions, members, removed) => {
    const feed = loaded(50, { o1: 10 });
    expect(events.map(([id, present, revision]) => feed.onMembership(id, role(present), revision))).toEqual(actions);
    expect(revisions(feed)).toEqual(members);
    expect(Object.fromEntries(feed.removed)).toEqual(removed);
  });

  it('makes memory say "changed" after a membership event', () => {
    const feed = loaded(50, { o1: 10 });
    expect(feed.quietAfter(50)).toBe(true);
    feed.onMembership('o2', 'reader', 55);
    expect(feed.quietAfter(54)).toBe(false);
    expect(feed.quietAfter(55)).toBe(true);
  });
});

describe('UserFeed.changesSince', () => {
  it.each<[string, number, FeedRead, Record<string, number>, unknown[]]>([
    ['nothing after the cursor', 100, read(120, { o1: ['owner', 10] }, { o1: 90 }), {}, []],
    ['an entry change', 100, read(120, { o1: ['owner', 10], o2: ['reader', 11] }, { o1: 101, o2: 100 }), {}, [{ id: 'o1', role: 'owner' }]],
    ['a new membership', 100, read(120, { o1: ['writer', 110] }, { o1: 0 }), {}, [{ id: 'o1', role: 'writer' }]],
    [
      'cursor 0 lists every object',
      0,
      read(120, { b: ['reader', 5], a: ['owner', 3] }, { a: 0, b: 0 }),
      {},
      [
        { id: 'a', role: 'owner' },
        { id: 'b', role: 'reader' },
      ],
    ],
    ['a removal after the cursor', 100, read(120, {}, {}), { o9: 105 }, [{ id: 'o9', removed: true }]],
    ['a removal before the cursor', 100, read(120, {}, {}), { o9: 95 }, []],
    ['a removal undone by the read', 100, read(120, { o9: ['reader', 90] }, { o9: 0 }), { o9: 105 }, []],
  ])('%s', (_name, cursor, feedRead, removed, expected) => {
    const feed = new UserFeed('u1');
    for (const [id, revision] of Object.entries(removed)) {
      feed.members.set(id, { role: 'reader', revision: 1, head: 0 });
      feed.onMembership(id, undefined, revision);
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
    feed.onObjectChange('o1', 70);
    expect(feed.quietAfter(60)).toBe(false);
    expect(feed.quietAfter(70)).toBe(true);
  });

  it('distrusts memory until the next read after invalidate', () => {
    const feed = loaded(50, { o1: 10 });
    const generation = feed.generation;
    feed.invalidate();
    expect(feed.generation).toBe(generation + 1);
    expect(feed.quietAfter(1000)).toBe(false);
    feed.mergeMemberships(index({ o1: 10 }), 80);
    expect(feed.quietAfter(79)).toBe(false);
    expect(feed.quietAfter(80)).toBe(true);
  });
});

describe('UserFeed.memoryChangesSince', () => {
  it.each<[string, (feed: UserFeed) => void, number, unknown[]]>([
    ['nothing after the cursor', () => undefined, 50, []],
    ['an entry change seen by the watch', (f) => f.onObjectChange('o1', 60), 50, [{ id: 'o1', role: 'reader' }]],
    ['an entry change before the cursor', (f) => f.onObjectChange('o1', 45), 50, []],
    [
      'a head read from etcd',
      (f) =>
        f.mergeHeads(
          new Map([
            ['o1', 55],
            ['o9', 99],
          ]),
        ),
      50,
      [{ id: 'o1', role: 'reader' }],
    ],
    ['a new membership with its role', (f) => f.onMembership('o2', 'writer', 70), 50, [{ id: 'o2', role: 'writer' }]],
    ['a role change', (f) => f.onMembership('o1', 'writer', 70), 50, [{ id: 'o1', role: 'writer' }]],
    ['a removal', (f) => f.onMembership('o1', undefined, 70), 50, [{ id: 'o1', removed: true }]],
    ['a removal before the cursor', (f) => f.onMembership('o1', undefined, 70), 70, []],
  ])('%s', (_name, change, cursor, expected) => {
    const feed = loaded(40, { o1: 10 });
    change(feed);
    expect(feed.memoryChangesSince(cursor)).toEqual(expected);
  });

  it('keeps the latest head of an object across events in any order', () => {
    const feed = loaded(40, { o1: 10 });
    feed.onObjectChange('o1', 80);
    feed.mergeHeads(new Map([['o1', 60]]));
    expect(feed.members.get('o1')?.head).toBe(80);
    expect(feed.memoryChangesSince(79)).toEqual([{ id: 'o1', role: 'reader' }]);
    expect(feed.memoryChangesSince(80)).toEqual([]);
  });
});

describe('liveObjects', () => {
  it.each<[string, [string, Role][], { id: string; role: Role }[]]>([
    ['none', [], []],
    [
      'every membership by id, never a removal',
      [
        ['oB', 'reader'],
        ['oA', 'owner'],
      ],
      [
        { id: 'oA', role: 'owner' },
        { id: 'oB', role: 'reader' },
      ],
    ],
  ])('%s', (_what, members, expected) => {
    expect(liveObjects(new Map(members.map(([id, role]) => [id, { role }])))).toEqual(expected);
  });
});
