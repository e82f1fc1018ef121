// The declared size of a block upload, as a table: 411 without Content-Length, 400 unless it
// is a positive integer, 413 over the largest block. And how a caller possesses a block from
// its records: by upload, through a reference in an object the caller reads, or not at all.
import { ApiError } from '@meshwork/contract';
import { describe, expect, it } from 'vitest';
import type { BlockRecords } from '../../stores/metadata-store.ts';
import { maxBlockBytes } from '../schemas.ts';
import { isOrphanHolder, possessionFromRecords, quotaAllows, uploadSize } from './blocks.ts';

const at = '2026-01-01T00:00:00.000Z';

function records(overrides: Partial<BlockRecords>): BlockRecords {
  return { revision: 100, state: undefined, holders: [], refs: [], ...overrides };
}

describe('possessionFromRecords', () => {
  it.each<[string, BlockRecords, string[], string]>([
    ['nothing recorded', records({}), ['o1'], 'none'],
    ['uploaded by the caller', records({ holders: [{ userId: 'u1', createdAt: at, version: 5 }] }), [], 'holder'],
    ['uploaded by someone else only', records({ holders: [{ userId: 'u2', createdAt: at, version: 5 }] }), [], 'none'],
    ['referenced in an object the caller reads', records({ refs: [{ objectId: 'o1', path: 'a', version: 6 }] }), ['o1'], 'refs'],
    [
      'referenced only in an object the caller does not read',
      records({ refs: [{ objectId: 'o2', path: 'a', version: 6 }] }),
      ['o1'],
      'none',
    ],
    [
      'uploaded by the caller but being deleted',
      records({ state: { value: { state: 'deleting', since: at }, version: 7 }, holders: [{ userId: 'u1', createdAt: at, version: 5 }] }),
      [],
      'none',
    ],
    [
      'uploaded again after a deletion',
      records({ state: { value: { state: 'deleted', since: at }, version: 7 }, holders: [{ userId: 'u1', createdAt: at, version: 9 }] }),
      [],
      'holder',
    ],
  ])('%s: %s', (_what, recorded, readable, kind) => {
    expect(possessionFromRecords(recorded, 'u1', new Set(readable)).kind).toBe(kind);
  });
});

describe('uploadSize', () => {
  it.each<[string, number]>([
    ['1', 1],
    [String(maxBlockBytes), maxBlockBytes],
  ])('takes %s', (header, size) => {
    expect(uploadSize(header)).toBe(size);
  });

  it.each<[string | undefined, string, number]>([
    [undefined, 'length_required', 411],
    ['0', 'invalid_request', 400],
    ['-1', 'invalid_request', 400],
    ['1.5', 'invalid_request', 400],
    ['lots', 'invalid_request', 400],
    [String(maxBlockBytes + 1), 'too_large', 413],
  ])('refuses %s with %s', (header, code, status) => {
    let caught: unknown;
    try {
      uploadSize(header);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ApiError);
    expect(caught).toMatchObject({ code, status });
  });
});

describe('quotaAllows', () => {
  it.each<[number, number, number | null | undefined, boolean]>([
    [0, 1000, undefined, true],
    [5000, 1000, null, true],
    [500, 1000, 1500, true],
    [501, 1000, 1500, false],
    [0, 1, 0, false],
  ])('%i used + %i bytes under a quota of %s: %s', (used, size, quota, allowed) => {
    expect(quotaAllows(used, size, quota)).toBe(allowed);
  });
});

describe('isOrphanHolder', () => {
  const now = new Date('2026-12-05T12:00:00.000Z');
  it.each([
    ['2026-12-05T11:59:59.000Z', false],
    ['2026-12-05T11:55:00.000Z', false],
    ['2026-12-05T11:54:59.999Z', true],
    ['2026-12-04T12:00:00.000Z', true],
    ['not a time', false],
  ])('a holder written at %s is left behind: %s', (createdAt, orphan) => {
    expect(isOrphanHolder(createdAt, now)).toBe(orphan);
  });
});
