// The pure parts of the WebDAV handler: app passwords, object names, preconditions, ranges,
// lock timeouts, X-OC-Mtime, folder children and collection ETags.
import { describe, expect, it } from 'vitest';
import type { Entry, MeshObject } from '@meshwork/client';
import {
  childrenOf,
  collectionEtag,
  DavError,
  deviceTokenOf,
  lockTimeout,
  mtimeOf,
  objectNames,
  parseRange,
  readPreconditions,
} from './handler.ts';

const basic = (s: string): string => `Basic ${Buffer.from(s).toString('base64')}`;
const object = (id: string, name: string): MeshObject => ({
  id,
  name,
  owner: 'u',
  role: 'owner',
  members: [],
  cloudStorage: true,
  createdAt: '2026-01-01T00:00:00.000Z',
  version: '1',
});
const entry = (path: string, version: string, kind: 'file' | 'directory' = 'file'): Entry => ({
  path,
  kind,
  size: 1,
  blocks: [],
  contentHash: 'h',
  modifiedBy: 'd',
  mtime: '2026-01-01T00:00:00.000Z',
  deleted: false,
  version,
});

describe('DavError', () => {
  it('keeps a stack only for a 5xx, the answers that are logged', () => {
    const expected = new DavError(405, 'MKCOL where a folder is', undefined, { allow: 'GET' });
    expect(expected.stack).not.toMatch(/\n\s+at /);
    expect([expected.status, expected.message, expected.headers]).toEqual([405, 'MKCOL where a folder is', { allow: 'GET' }]);
    expect(new DavError(503, 'retry').stack).toMatch(/\n\s+at /);
    // The limit is the process's again afterwards.
    expect(new Error('plain').stack).toMatch(/\n\s+at /);
  });
});

describe('deviceTokenOf', () => {
  it('takes a device token as the password, whatever the user name', () => {
    expect(deviceTokenOf(basic('anyone:mwd.dev1.secret_-x'))).toEqual({ token: 'mwd.dev1.secret_-x', deviceId: 'dev1' });
  });

  it.each([undefined, 'Bearer mwd.a.b', basic('me:mwu.user.secret'), basic('me:password'), basic('no-colon'), 'Basic !!!'])(
    'refuses %j',
    (header) => {
      expect(deviceTokenOf(header)).toBeUndefined();
    },
  );
});

describe('objectNames', () => {
  it('names objects by name, unique and without slashes', () => {
    const names = objectNames([object('o1', 'Photos'), object('o2', 'Photos'), object('o3', 'a/b'), object('o4', 'Docs')]);
    expect([...names.keys()].sort()).toEqual(['Docs', 'Photos (o1)', 'Photos (o2)', 'a_b']);
  });
});

describe('readPreconditions', () => {
  const lm = '2026-01-01T00:00:10.000Z';
  it.each([
    [{ 'if-match': '"1"' }, '"1"', undefined],
    [{ 'if-match': '"2", "1"' }, '"1"', undefined],
    [{ 'if-match': '"2"' }, '"1"', 412],
    [{ 'if-match': '*' }, undefined, 412],
    [{ 'if-none-match': '"1"' }, '"1"', 304],
    [{ 'if-none-match': 'W/"1"' }, '"1"', 304],
    [{ 'if-none-match': '*' }, '"1"', 304],
    [{ 'if-none-match': '*' }, undefined, undefined],
    [{ 'if-modified-since': 'Thu, 01 Jan 2026 00:00:10 GMT' }, '"1"', 304],
    [{ 'if-modified-since': 'Thu, 01 Jan 2026 00:00:09 GMT' }, '"1"', undefined],
    [{ 'if-unmodified-since': 'Thu, 01 Jan 2026 00:00:09 GMT' }, '"1"', 412],
  ] as const)('%j against %s → %s', (headers, etag, expected) => {
    expect(readPreconditions(headers, etag, etag === undefined ? undefined : lm)).toBe(expected);
  });
});

describe('small parsers', () => {
  it('parses one byte range', () => {
    expect(parseRange('bytes=1-2')).toEqual({ start: 1, end: 2 });
    expect(parseRange('bytes=5-')).toEqual({ start: 5 });
    expect(parseRange('bytes=-3')).toEqual({ suffix: 3 });
    expect(parseRange('bytes=1-2,4-5')).toBeUndefined();
    expect(parseRange('items=1-2')).toBeUndefined();
  });

  it('clamps lock timeouts', () => {
    expect(lockTimeout(undefined)).toBe(600);
    expect(lockTimeout('Second-30')).toBe(30);
    expect(lockTimeout('Infinite, Second-4100000000')).toBe(3600);
    expect(lockTimeout('Second-99999')).toBe(3600);
    expect(lockTimeout('bogus')).toBe(600);
  });

  it('reads X-OC-Mtime as seconds', () => {
    expect(mtimeOf('1700000000')).toBe('2023-11-14T22:13:20.000Z');
    expect(mtimeOf('1700000000.5')).toBe('2023-11-14T22:13:20.500Z');
    expect(mtimeOf('-1')).toBeUndefined();
    expect(mtimeOf('soon')).toBeUndefined();
  });
});

describe('folders', () => {
  const o = object('o1', 'files');
  const listing = [entry('a', '5', 'directory'), entry('a/x', '6'), entry('b/c/d', '7'), entry('top', '8')];

  it('lists direct children, with folders only deeper entries imply', () => {
    const children = childrenOf(o, '', listing).map((r) =>
      r.kind === 'root' ? '' : `${r.kind}:${r.path}:${r.entry ? 'entry' : 'implied'}`,
    );
    expect(children).toEqual(['collection:a:entry', 'collection:b:implied', 'file:top:entry']);
    expect(childrenOf(o, 'b', listing).map((r) => (r.kind === 'root' ? '' : r.path))).toEqual(['b/c']);
  });

  it('changes a folder ETag when anything below changes, and only then', () => {
    const before = collectionEtag('o1', 'b', listing);
    expect(collectionEtag('o1', 'b', [...listing.slice(0, 2), entry('b/c/d', '9'), listing[3]!])).not.toBe(before);
    expect(collectionEtag('o1', 'b', [...listing.slice(0, 3), entry('top', '10')])).toBe(before);
    expect(collectionEtag('o1', 'b', listing.slice(0, 2))).not.toBe(before);
  });
});
