// The pure parts of a change set: page boundaries compare UTF-8 bytes (as etcd orders keys),
// which cursors may be answered, when the change feed's fast path applies, and the page built.
import { describe, expect, it } from 'vitest';
import { parsePageToken } from '../../cursor.ts';
import type { EntryRecord, Versioned } from '../../stores/metadata-store.ts';
import { changesPage, cursorExpired, cursorInRange, fastPathFits, pathsAfter } from './changes.ts';

function entry(path: string, version: number): Versioned<EntryRecord> {
  const mtime = '2026-01-01T00:00:00.000Z';
  const value: EntryRecord = { path, kind: 'directory', size: 0, blocks: [], contentHash: null, modifiedBy: 'd1', mtime, deleted: false };
  return { value, version };
}

describe('pathsAfter', () => {
  it.each<[string[], string, string[]]>([
    [['b', 'a', 'c'], '', ['a', 'b', 'c']],
    [['b', 'a', 'c'], 'a', ['b', 'c']],
    [['b', 'a', 'c'], 'c', []],
    // By bytes, not UTF-16 code units: U+FF5E (ef bd be) sorts before U+1F600 (f0 9f 98 80).
    [['\u{1F600}', '\uFF5E', 'z'], '', ['z', '\uFF5E', '\u{1F600}']],
    [['\u{1F600}', '\uFF5E', 'z'], '\uFF5E', ['\u{1F600}']],
  ])('%j after %j', (paths, after, expected) => {
    expect(pathsAfter(paths, after)).toEqual(expected);
  });
});

describe('cursorInRange', () => {
  it.each<[string, number, number, number, boolean]>([
    ['at the floor', 10, 10, 50, true],
    ['between floor and snapshot', 20, 10, 50, true],
    ['at the snapshot', 50, 10, 50, true],
    ['below the floor (purged tombstones)', 9, 10, 50, false],
    ['past the snapshot (not from this mesh)', 51, 10, 50, false],
  ])('%s', (_what, since, floor, snapshot, expected) => {
    expect(cursorInRange(since, floor, snapshot)).toBe(expected);
  });

  it('answers an expired cursor with 410 and relist', () => {
    expect(cursorExpired()).toMatchObject({ status: 410, code: 'cursor_expired', details: { relist: true } });
  });
});

describe('fastPathFits', () => {
  it.each<[number, number, boolean]>([
    [0, 1000, true],
    [120, 1000, true],
    [121, 1000, false],
    [5000, 100, true],
    [5000, 121, false],
  ])('%i changed paths, limit %i: %s', (wanted, limit, expected) => {
    expect(fastPathFits(wanted, limit)).toBe(expected);
  });
});

describe('changesPage', () => {
  it('gives a token for the rest that keeps the snapshot and the cursor it started from', () => {
    const page = changesPage([entry('a', 11), entry('b', 12)], 40, true, 10);
    expect(page.cursor).toBe('40');
    expect(page.changes.map((c) => c.version)).toEqual(['11', '12']);
    expect(parsePageToken(page.next!)).toEqual({ snapshot: 40, after: 'b', since: 10 });
  });

  it('keeps the page size in the token, so later pages need no limit', () => {
    expect(parsePageToken(changesPage([entry('a', 11)], 40, true, 10, 1).next!)).toEqual({ snapshot: 40, after: 'a', since: 10, limit: 1 });
  });

  it.each<[string, Versioned<EntryRecord>[], boolean]>([
    ['no more', [entry('a', 11)], false],
    ['an empty slice', [], true],
  ])('has no next page with %s', (_what, slice, more) => {
    expect(changesPage(slice, 40, more, 10).next).toBeNull();
  });
});
