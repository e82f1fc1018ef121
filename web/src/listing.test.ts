import { describe, expect, it } from 'vitest';
import type { Entry } from '@meshwork/client';
import { breadcrumbs, childrenOf, formatSize, isConflictCopy, join, nameProblem, subtreeOf } from './listing.ts';

const entry = (path: string, kind: Entry['kind'] = 'file', deleted = false): Entry => ({
  path,
  kind,
  size: 0,
  blocks: [],
  contentHash: '',
  modifiedBy: 'u1',
  mtime: '2026-01-01T00:00:00Z',
  deleted,
  version: '1',
});

const entries = [
  entry('b.txt'),
  entry('a', 'directory'),
  entry('a/x.txt'),
  entry('a/y', 'directory'),
  entry('a/y/z.txt'),
  entry('gone.txt', 'file', true),
];

describe('the folder view', () => {
  it.each<[string, string[]]>([
    ['', ['a', 'b.txt']],
    ['a', ['a/y', 'a/x.txt']],
    ['a/y', ['a/y/z.txt']],
    ['b.txt', []],
  ])('lists the live children of %j, folders first', (dir, paths) => {
    expect(childrenOf(entries, dir).map((e) => e.path)).toEqual(paths);
  });

  it('takes a folder with everything under it, and nothing that only shares its prefix', () => {
    expect(subtreeOf([...entries, entry('ab.txt')], 'a').map((e) => e.path)).toEqual(['a', 'a/x.txt', 'a/y', 'a/y/z.txt']);
  });

  it('builds breadcrumbs from the root', () => {
    expect(breadcrumbs('a/y', 'Docs')).toEqual([
      { name: 'Docs', path: '' },
      { name: 'a', path: 'a' },
      { name: 'y', path: 'a/y' },
    ]);
  });

  it.each<[string, boolean]>([
    ['notes (conflict from laptop 2026-01-02 101500).txt', true],
    ['dir/notes (conflict from laptop 2026-01-02 101500)', true],
    ['notes (conflict).txt', false],
    ['notes.txt', false],
  ])('%j is a conflict copy: %s', (path, expected) => {
    expect(isConflictCopy(path)).toBe(expected);
  });

  it.each<[number, string]>([
    [0, '0 B'],
    [1023, '1023 B'],
    [1536, '1.5 KiB'],
    [20 * 1024 * 1024, '20.0 MiB'],
  ])('%d bytes read %j', (bytes, text) => {
    expect(formatSize(bytes)).toBe(text);
  });

  it.each<[string, string | undefined]>([
    ['', 'Enter a name.'],
    ['a/b', 'A name cannot contain "/".'],
    ['..', 'Choose another name.'],
    ['report.pdf', undefined],
  ])('name %j: %s', (name, problem) => {
    expect(nameProblem(name)).toBe(problem);
    expect(join('', 'x')).toBe('x');
  });
});
