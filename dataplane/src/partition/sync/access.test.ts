// The access rule as a table: a stranger meets 404 exactly like a missing object, a member
// without the role meets 403, and a role covers every lesser one.
import { describe, expect, it } from 'vitest';
import type { ObjectRecord, Role, Versioned } from '../../stores/metadata-store.ts';
import { checkObjectAccess, roleAllows } from './access.ts';

const object: Versioned<ObjectRecord> = {
  value: {
    id: 'o1',
    name: 'Docs',
    owner: 'u1',
    members: { u1: 'owner', u2: 'writer', u3: 'reader' },
    cloudStorage: true,
    createdAt: '',
    historyFloor: 0,
  },
  version: 5,
};

describe('checkObjectAccess', () => {
  it.each<[string, Versioned<ObjectRecord> | undefined, string, Role, number | undefined]>([
    ['the owner deletes', object, 'u1', 'owner', undefined],
    ['a writer writes', object, 'u2', 'writer', undefined],
    ['a writer reads', object, 'u2', 'reader', undefined],
    ['a reader reads', object, 'u3', 'reader', undefined],
    ['a reader writes', object, 'u3', 'writer', 403],
    ['a writer deletes', object, 'u2', 'owner', 403],
    ['a stranger reads', object, 'u9', 'reader', 404],
    ['anyone reads a missing object', undefined, 'u1', 'reader', 404],
  ])('%s', (_what, record, userId, need, status) => {
    if (status === undefined) {
      expect(checkObjectAccess(record, userId, 'o1', need)).toBe(record);
    } else {
      expect(() => checkObjectAccess(record, userId, 'o1', need)).toThrow(expect.objectContaining({ status }));
    }
  });

  it('says the same to a stranger as about a missing object', () => {
    const message = (record: Versioned<ObjectRecord> | undefined): unknown => {
      try {
        return checkObjectAccess(record, 'u9', 'o1', 'reader');
      } catch (err) {
        return err;
      }
    };
    expect(message(object)).toEqual(message(undefined));
  });
});

describe('roleAllows', () => {
  it.each<[Role | undefined, Role, boolean]>([
    ['owner', 'writer', true],
    ['writer', 'writer', true],
    ['reader', 'writer', false],
    [undefined, 'reader', false],
  ])('%s as %s: %s', (role, need, expected) => {
    expect(roleAllows(role, need)).toBe(expected);
  });
});
