// The decisions of a conditional entry write, as tables: which precondition a request carries
// (428 without one), when a write may skip reading the entry, what a stored entry means for the
// precondition (412 with what is there), and what follows each answer of the transaction.
import { ApiError } from '@meshwork/contract';
import { describe, expect, it } from 'vitest';
import type { WritePrecondition } from '../../http/preconditions.ts';
import type { EntryRecord, EntryWriteResult, Versioned } from '../../stores/metadata-store.ts';
import { blindExpectation, expectationFromStored, nextWriteStep, preconditionFailed, requirePrecondition } from './conditional-write.ts';

function entry(version: number, deleted = false): Versioned<EntryRecord> {
  return {
    value: {
      path: 'a.txt',
      kind: 'file',
      size: 1,
      blocks: [],
      contentHash: 'h',
      modifiedBy: 'd1',
      mtime: '2026-01-01T00:00:00.000Z',
      deleted,
    },
    version,
  };
}

function thrown(run: () => unknown): ApiError {
  try {
    run();
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error('nothing was thrown');
}

describe('requirePrecondition', () => {
  it.each<[string | undefined, string | undefined, WritePrecondition]>([
    [undefined, '*', { kind: 'create' }],
    ['"42"', undefined, { kind: 'match', versions: ['42'] }],
    ['"41", "42"', undefined, { kind: 'match', versions: ['41', '42'] }],
    ['*', undefined, { kind: 'exists' }],
  ])('If-Match %s, If-None-Match %s', (ifMatch, ifNoneMatch, expected) => {
    expect(requirePrecondition(ifMatch, ifNoneMatch)).toEqual(expected);
  });

  it.each<[string | undefined, string | undefined, string, number]>([
    [undefined, undefined, 'precondition_required', 428],
    [undefined, '"42"', 'precondition_required', 428],
    ['W/"42"', undefined, 'invalid_request', 400],
    ['42', undefined, 'invalid_request', 400],
  ])('refuses If-Match %s, If-None-Match %s with %s', (ifMatch, ifNoneMatch, code, status) => {
    expect(thrown(() => requirePrecondition(ifMatch, ifNoneMatch))).toMatchObject({ code, status });
  });
});

describe('blindExpectation', () => {
  it.each<[WritePrecondition, number | undefined]>([
    [{ kind: 'create' }, 0],
    [{ kind: 'match', versions: ['7'] }, 7],
    [{ kind: 'match', versions: ['7', '8'] }, undefined],
    [{ kind: 'match', versions: ['007'] }, undefined],
    [{ kind: 'match', versions: ['abc'] }, undefined],
    [{ kind: 'exists' }, undefined],
  ])('%j expects %s', (precondition, expected) => {
    expect(blindExpectation(precondition)).toBe(expected);
  });
});

describe('expectationFromStored', () => {
  it.each<[string, WritePrecondition, Versioned<EntryRecord> | undefined, number, boolean]>([
    ['create where nothing is', { kind: 'create' }, undefined, 0, true],
    ['create over a tombstone (compares the tombstone)', { kind: 'create' }, entry(9, true), 9, true],
    ['replace the version held', { kind: 'match', versions: ['9'] }, entry(9), 9, false],
    ['replace whatever exists', { kind: 'exists' }, entry(9), 9, false],
  ])('%s', (_what, precondition, stored, expected, created) => {
    expect(expectationFromStored(precondition, 'a.txt', stored)).toMatchObject({ expected, created });
  });

  it.each<[string, WritePrecondition, Versioned<EntryRecord> | undefined, string | null]>([
    ['create over a live entry', { kind: 'create' }, entry(9), '9'],
    ['replace an older version', { kind: 'match', versions: ['8'] }, entry(9), '9'],
    ['replace a deleted entry', { kind: 'match', versions: ['9'] }, entry(9, true), null],
    ['replace what does not exist', { kind: 'exists' }, undefined, null],
  ])('412 for %s, with what is there', (_what, precondition, stored, currentVersion) => {
    const err = thrown(() => expectationFromStored(precondition, 'a.txt', stored));
    expect(err).toMatchObject({ code: 'precondition_failed', status: 412, details: { currentVersion } });
  });
});

describe('nextWriteStep', () => {
  it.each<[string, EntryWriteResult, boolean, string]>([
    ['written', { ok: true, version: 12 }, false, 'done'],
    ['the object moved (a rename or share)', { ok: false, reason: 'object' }, false, 'retry_object'],
    ['the object moved under a blind write', { ok: false, reason: 'object' }, true, 'retry_object'],
    ['a block reference of the entry was dropped meanwhile', { ok: false, reason: 'refs' }, true, 'retry_refs'],
    ['a block was marked for collection since its proof', { ok: false, reason: 'blocks', marked: ['ab'] }, true, 'failed'],
    ['a blind guess missed', { ok: false, reason: 'entry', current: entry(10) }, true, 'read_entry'],
    ['a lost race', { ok: false, reason: 'entry', current: entry(10) }, false, 'failed'],
  ])('%s: %s', (_what, result, blind, kind) => {
    expect(nextWriteStep(result, blind, 'a.txt').kind).toBe(kind);
  });

  it('fails a commit whose block was marked for collection with 409 blocks_missing naming it', () => {
    const step = nextWriteStep({ ok: false, reason: 'blocks', marked: ['ab'] }, true, 'a.txt');
    expect(step.kind === 'failed' && step.error).toMatchObject({ status: 409, code: 'blocks_missing', details: { missing: ['ab'] } });
  });

  it('fails a lost race with 412, the current entry and its ETag', () => {
    const step = nextWriteStep({ ok: false, reason: 'entry', current: entry(10) }, false, 'a.txt');
    expect(step.kind === 'failed' && step.error).toMatchObject({
      status: 412,
      headers: { ETag: '"10"' },
      details: { currentVersion: '10', current: { path: 'a.txt', version: '10' } },
    });
  });
});

describe('preconditionFailed', () => {
  it('reports a tombstone as absent, without an ETag', () => {
    expect(preconditionFailed('a.txt', entry(3, true))).toMatchObject({
      message: 'entry a.txt does not exist',
      headers: {},
      details: { current: null },
    });
  });
});
