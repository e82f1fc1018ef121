// The recent writes a PROPFIND after a PUT is answered from (ADR 74): who gets them, for how
// long, and which writes make a PUT's answer unusable.
import { describe, expect, it } from 'vitest';
import type { Entry } from '@meshwork/client';
import { RecentWrites } from './recent-writes.ts';

const entry = (path: string, version: string): Entry => ({
  path,
  kind: 'file',
  size: 1,
  blocks: [],
  contentHash: `h${version}`,
  modifiedBy: 'd1',
  mtime: '2026-01-01T00:00:00.000Z',
  deleted: false,
  version,
});
const write = (path: string, version: string) => ({ entry: entry(path, version), props: { dead: {} } });

describe('RecentWrites', () => {
  it('answers the credentials that wrote a file, for the time to live only', () => {
    const recent = new RecentWrites(1000);
    recent.remember('tok', 'o1', 'a/b', write('a/b', '7'), recent.mark(0), 10);
    expect(recent.recall('tok', 'o1', 'a/b', 500)?.entry.version).toBe('7');
    expect(recent.recall('other', 'o1', 'a/b', 500)).toBeUndefined();
    expect(recent.recall('tok', 'o2', 'a/b', 500)).toBeUndefined();
    expect(recent.recall('tok', 'o1', 'a/b', 1010)).toBeUndefined();
  });

  it.each([
    ['the path itself', 'a/b'],
    ['a folder above it', 'a'],
    ["the object's root", ''],
  ])('forgets a file when a write touches %s', (_what, path) => {
    const recent = new RecentWrites(1000);
    recent.remember('tok', 'o1', 'a/b', write('a/b', '7'), recent.mark(0), 1);
    recent.forget('o1', path, 2);
    expect(recent.recall('tok', 'o1', 'a/b', 3)).toBeUndefined();
  });

  it('forgets every file below a folder a write touches, however deep, and no other', () => {
    const recent = new RecentWrites(1000);
    for (const path of ['a/b/c', 'a/b/d/e', 'a/x', 'ab/c', 'z']) recent.remember('tok', 'o1', path, write(path, '1'), recent.mark(0), 1);
    recent.forget('o1', 'a/b', 2);
    const left = ['a/b/c', 'a/b/d/e', 'a/x', 'ab/c', 'z'].filter((p) => recent.recall('tok', 'o1', p, 3) !== undefined);
    expect(left).toEqual(['a/x', 'ab/c', 'z']);
    // Written again and forgotten again: the folders' counts followed every change.
    recent.remember('tok', 'o1', 'a/b/c', write('a/b/c', '2'), recent.mark(4), 5);
    recent.remember('tok', 'o1', 'a/b/c', write('a/b/c', '3'), recent.mark(6), 7);
    recent.forget('o1', 'a', 8);
    expect(['a/b/c', 'a/x', 'ab/c', 'z'].filter((p) => recent.recall('tok', 'o1', p, 9) !== undefined)).toEqual(['ab/c', 'z']);
    recent.forget('o1', '', 10);
    expect(['ab/c', 'z'].filter((p) => recent.recall('tok', 'o1', p, 11) !== undefined)).toEqual([]);
  });

  it('keeps a file when a write touches another path', () => {
    const recent = new RecentWrites(1000);
    recent.remember('tok', 'o1', 'a/b', write('a/b', '7'), recent.mark(0), 1);
    recent.forget('o1', 'a/c', 2);
    recent.forget('o1', 'a/b2', 2);
    recent.forget('o2', 'a/b', 2);
    expect(recent.recall('tok', 'o1', 'a/b', 3)?.entry.version).toBe('7');
  });

  it.each([
    ['the path was written', 'a/b'],
    ['a folder above it was written', 'a'],
  ])('remembers nothing from a PUT during which %s', (_what, path) => {
    const recent = new RecentWrites(1000);
    const mark = recent.mark(0);
    recent.forget('o1', path, 5);
    recent.remember('tok', 'o1', 'a/b', write('a/b', '7'), mark, 10);
    expect(recent.recall('tok', 'o1', 'a/b', 11)).toBeUndefined();
  });

  it('remembers neither of two PUTs of one path that overlapped', () => {
    const recent = new RecentWrites(1000);
    const first = recent.mark(0);
    const second = recent.mark(1);
    recent.remember('tok', 'o1', 'f', write('f', '8'), second, 5);
    expect(recent.recall('tok', 'o1', 'f', 6)?.entry.version).toBe('8');
    // The first PUT may have committed after the second: neither answer is known to be the last.
    recent.remember('tok', 'o1', 'f', write('f', '9'), first, 7);
    expect(recent.recall('tok', 'o1', 'f', 8)).toBeUndefined();
  });

  it('remembers PUTs of other paths that overlapped', () => {
    const recent = new RecentWrites(1000);
    const a = recent.mark(0);
    const b = recent.mark(0);
    recent.remember('tok', 'o1', 'x/a', write('x/a', '1'), a, 5);
    recent.remember('tok', 'o1', 'x/b', write('x/b', '2'), b, 6);
    expect(recent.recall('tok', 'o1', 'x/a', 7)?.entry.version).toBe('1');
    expect(recent.recall('tok', 'o1', 'x/b', 7)?.entry.version).toBe('2');
  });

  it('remembers nothing from a PUT that took longer than the time to live', () => {
    const recent = new RecentWrites(1000);
    recent.remember('tok', 'o1', 'f', write('f', '1'), recent.mark(0), 1000);
    expect(recent.recall('tok', 'o1', 'f', 1001)).toBeUndefined();
  });

  it('sweeps what expired once it holds many files, and still answers the fresh ones', () => {
    const recent = new RecentWrites(1000);
    for (let i = 0; i < 10_000; i++) recent.remember('tok', 'o1', `old${i}`, write(`old${i}`, '1'), recent.mark(0), 0);
    recent.remember('tok', 'o1', 'new', write('new', '2'), recent.mark(2000), 2000);
    expect(recent.recall('tok', 'o1', 'new', 2001)?.entry.version).toBe('2');
    expect(recent.recall('tok', 'o1', 'old1', 2001)).toBeUndefined();
  });
});
