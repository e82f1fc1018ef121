import { describe, expect, it } from 'vitest';
import { formatCursor, formatPageToken, InvalidCursorError, parseCursor, parsePageToken } from './cursor.ts';

describe('cursors', () => {
  it.each([0, 1, 123456789])('round-trips revision %i', (revision) => {
    expect(parseCursor(formatCursor(revision))).toBe(revision);
  });

  it.each(['', '-1', '1.5', 'abc', '1e9', '9'.repeat(16)])('refuses cursor %j', (text) => {
    expect(() => parseCursor(text)).toThrow(InvalidCursorError);
  });
});

describe('page tokens', () => {
  it.each([
    { snapshot: 10, after: 'a/b' },
    { snapshot: 10, after: 'dir/é', since: 3 },
    { snapshot: 1, after: '', since: 0 },
    { snapshot: 10, after: 'a', limit: 1 },
    { snapshot: 10, after: 'a', since: 3, limit: 5000 },
  ])('round-trips %j', (token) => {
    expect(parsePageToken(formatPageToken(token))).toEqual(token);
  });

  it.each([
    '',
    'bm90IGpzb24',
    Buffer.from('[0,"a",null]').toString('base64url'),
    Buffer.from('{"a":1}').toString('base64url'),
    Buffer.from('[5,7,null]').toString('base64url'),
    Buffer.from('[5,"a",null,0]').toString('base64url'),
    Buffer.from('[5,"a",null,1,2]').toString('base64url'),
  ])('refuses %j', (text) => {
    expect(() => parsePageToken(text)).toThrow(InvalidCursorError);
  });
});
