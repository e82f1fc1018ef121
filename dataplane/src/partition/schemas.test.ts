import { describe, expect, it } from 'vitest';
import { commitEntryBody, createObjectBody, missingBlocksBody, putMemberBody, validate, ValidationError } from './schemas.ts';

const sha = 'a'.repeat(64);

describe('validate', () => {
  it.each([
    [createObjectBody, { name: 'Photos' }, { name: 'Photos', cloudStorage: true }],
    [putMemberBody, { role: 'reader' }, { role: 'reader' }],
    [missingBlocksBody, { blocks: [sha] }, { blocks: [sha] }],
    [commitEntryBody, { kind: 'file', blocks: [{ sha256: sha, size: 10 }] }, { kind: 'file', blocks: [{ sha256: sha, size: 10 }] }],
    [commitEntryBody, { kind: 'directory' }, { kind: 'directory' }],
  ])('accepts a valid body', (schema, body, parsed) => {
    expect(validate(schema as never, body)).toEqual(parsed);
  });

  it.each([
    [createObjectBody, { name: '' }, 'body.name'],
    [createObjectBody, { name: 'x', extra: 1 }, 'body'],
    [createObjectBody, null, 'body'],
    [putMemberBody, { role: 'owner' }, 'body.role'],
    [missingBlocksBody, { blocks: ['ABC'] }, 'body.blocks.0'],
    [commitEntryBody, { kind: 'file', blocks: [{ sha256: sha, size: 5 * 1024 * 1024 }] }, 'body.blocks.0.size'],
    [commitEntryBody, { kind: 'file', blocks: [{ sha256: sha, size: 1 }], mtime: 'yesterday' }, 'body.mtime'],
    [commitEntryBody, { kind: 'link' }, 'body.kind'],
    [commitEntryBody, { kind: 'directory', blocks: [] }, 'body'],
  ])('names the bad field of %#', (schema, body, field) => {
    try {
      validate(schema as never, body);
      expect.unreachable('validation passed');
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).field).toBe(field);
      expect((err as ValidationError).message.startsWith(`${field}: `)).toBe(true);
    }
  });
});
