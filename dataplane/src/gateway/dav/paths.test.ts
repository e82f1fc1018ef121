// WebDAV URL paths: objects and entry paths from percent-encoded segments, refusals, hrefs.
import { describe, expect, it } from 'vitest';
import { DavPathError, destinationPath, hrefOf, isWithin, parentOf, parseDavPath, pathnameOf, rebase } from './paths.ts';

describe('parseDavPath', () => {
  it.each([
    ['/dav', { objectName: undefined, path: '', trailingSlash: true }],
    ['/dav/', { objectName: undefined, path: '', trailingSlash: true }],
    ['/dav/files', { objectName: 'files', path: '', trailingSlash: false }],
    ['/dav/files/', { objectName: 'files', path: '', trailingSlash: true }],
    ['/dav/files/a/b%20c.txt', { objectName: 'files', path: 'a/b c.txt', trailingSlash: false }],
    ['/dav/My%20Files/caf%C3%A9/', { objectName: 'My Files', path: 'café', trailingSlash: true }],
    // NFD is normalised to NFC, as the API does.
    ['/dav/files/cafe%CC%81', { objectName: 'files', path: 'café', trailingSlash: false }],
  ])('parses %s', (url, expected) => {
    expect(parseDavPath(url)).toEqual(expected);
  });

  it.each([
    '/dav/files/../x',
    '/dav/files/./x',
    '/dav/files/%2e%2e/x',
    '/dav/files/a%2Fb',
    '/dav/files//x',
    '/dav/files/%ff',
    '/dav/files/a%00b',
    '/davx',
    '/v1/x',
  ])('refuses %s', (url) => {
    expect(() => parseDavPath(url)).toThrow(DavPathError);
  });
});

describe('pathnameOf', () => {
  it('drops the query and refuses a fragment', () => {
    expect(pathnameOf('/dav/a?b=c')).toBe('/dav/a');
    expect(() => pathnameOf('/dav/frag/#ment')).toThrow(DavPathError);
  });
});

describe('hrefs and path arithmetic', () => {
  it('encodes every segment and marks collections', () => {
    expect(hrefOf(undefined, '', true)).toBe('/dav/');
    expect(hrefOf('My Files', "a b/it's (1).txt", false)).toBe('/dav/My%20Files/a%20b/it%27s%20%281%29.txt');
    expect(hrefOf('files', 'dir', true)).toBe('/dav/files/dir/');
    expect(parseDavPath(hrefOf('日本', 'é/🙂 x', false))).toEqual({ objectName: '日本', path: 'é/🙂 x', trailingSlash: false });
  });

  it('knows parents, ancestry and moves', () => {
    expect(parentOf('a/b/c')).toBe('a/b');
    expect(parentOf('a')).toBe('');
    expect(isWithin('a/b', 'a')).toBe(true);
    expect(isWithin('ab', 'a')).toBe(false);
    expect(isWithin('anything', '')).toBe(true);
    expect(rebase('a/b/c', 'a/b', 'x')).toBe('x/c');
    expect(rebase('a', 'a', 'y/z')).toBe('y/z');
  });
});

describe('destinationPath', () => {
  it('takes an absolute URL of this host or a path', () => {
    expect(destinationPath('http://h:1/dav/files/x', 'h:1')).toBe('/dav/files/x');
    expect(destinationPath('/dav/files/x', 'h:1')).toBe('/dav/files/x');
  });

  it('refuses another host and dot segments', () => {
    expect(() => destinationPath('http://elsewhere/dav/files/x', 'h:1')).toThrow(DavPathError);
    expect(() => destinationPath('/dav/files/a/../../b', 'h:1')).toThrow(DavPathError);
    expect(() => destinationPath('/dav/files/%2E%2E/b', 'h:1')).toThrow(DavPathError);
  });
});
