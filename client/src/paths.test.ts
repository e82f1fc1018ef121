// Path encoding: each segment on its own, so names reach the server as they are.
import { describe, expect, it } from 'vitest';
import { asEtag, encodePath, query, segment } from './paths.ts';

describe('encodePath', () => {
  it.each([
    ['reports/q3.pdf', 'reports/q3.pdf'],
    ['a b/c?d#e', 'a%20b/c%3Fd%23e'],
    ['100%/x', '100%25/x'],
    ['résumé.txt', 'r%C3%A9sum%C3%A9.txt'],
    ['a+b&c=d', 'a%2Bb%26c%3Dd'],
    ['日本/語', '%E6%97%A5%E6%9C%AC/%E8%AA%9E'],
  ])('%j → %j', (path, encoded) => {
    expect(encodePath(path)).toBe(encoded);
  });

  it('keeps a slash in an id from becoming a separator', () => {
    expect(segment('o/../x')).toBe('o%2F..%2Fx');
  });
});

describe('query', () => {
  it('leaves out undefined parameters and encodes values', () => {
    expect(query({ cursor: '12', limit: undefined, wait: 0 })).toBe('?cursor=12&wait=0');
    expect(query({ page: 'a+b/c=' })).toBe('?page=a%2Bb%2Fc%3D');
    expect(query({ limit: undefined })).toBe('');
  });
});

describe('asEtag', () => {
  it.each([
    ['42', '"42"'],
    ['"42"', '"42"'],
    ['W/"x"', 'W/"x"'],
    ['*', '*'],
  ])('%j → %j', (value, etag) => {
    expect(asEtag(value)).toBe(etag);
  });
});
