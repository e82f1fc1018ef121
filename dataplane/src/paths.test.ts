import { describe, expect, it } from 'vitest';
import { InvalidPathError, normalizeEntryPath } from './paths.ts';

describe('normalizeEntryPath', () => {
  it.each([
    ['a/b.txt', 'a/b.txt'],
    ['/a//b/', 'a/b'],
    ['./a/./b', 'a/b'],
    ['Cafe\u0301/x', 'Caf\u00e9/x'],
    ['with space/and:colon', 'with space/and:colon'],
  ])('normalises %j to %j', (raw, expected) => {
    expect(normalizeEntryPath(raw)).toBe(expected);
  });

  it.each([
    ['a/../b', '".." segment'],
    ['..', '".." segment'],
    ['a/\u0000b', 'control character'],
    ['a\nb', 'control character'],
    ['a\u007f', 'control character'],
    ['', 'empty'],
    ['/./', 'empty'],
    ['x'.repeat(256), 'longer than 255'],
    [Array.from({ length: 65 }, () => 'd').join('/'), 'deeper than 64'],
    [Array.from({ length: 6 }, () => 'e'.repeat(200)).join('/'), 'longer than 1024'],
  ])('refuses %j', (raw, reason) => {
    expect(() => normalizeEntryPath(raw)).toThrow(InvalidPathError);
    expect(() => normalizeEntryPath(raw)).toThrow(reason);
  });

  it('accepts a name of exactly 255 bytes', () => {
    expect(normalizeEntryPath('y'.repeat(255))).toHaveLength(255);
  });
});
