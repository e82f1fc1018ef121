import { describe, expect, it } from 'vitest';
import {
  type WritePrecondition,
  ifNoneMatchHits,
  parseEtagList,
  parseWritePrecondition,
  preconditionHolds,
  strongEtag,
} from './preconditions.ts';

describe('entity tags', () => {
  it.each([
    [undefined, []],
    ['*', ['*']],
    ['"a"', ['"a"']],
    ['"a", W/"b" ,"c"', ['"a"', 'W/"b"', '"c"']],
    ['garbage', []],
  ])('parses %j', (header, tags) => {
    expect(parseEtagList(header)).toEqual(tags);
  });

  it.each([
    ['"abc"', true],
    ['W/"abc"', true],
    ['"x", "abc"', true],
    ['*', true],
    ['"abd"', false],
    [undefined, false],
  ])('If-None-Match %j against "abc" hits: %j', (header, hit) => {
    expect(ifNoneMatchHits(header, strongEtag('abc'))).toBe(hit);
  });
});

describe('write preconditions', () => {
  it.each([
    [undefined, undefined, { kind: 'none' }],
    [undefined, '*', { kind: 'create' }],
    ['"12"', undefined, { kind: 'match', versions: ['12'] }],
    ['W/"12", "13"', undefined, { kind: 'match', versions: ['13'] }],
    ['*', undefined, { kind: 'exists' }],
  ])('If-Match %j, If-None-Match %j', (ifMatch, ifNoneMatch, expected) => {
    expect(parseWritePrecondition(ifMatch, ifNoneMatch)).toEqual(expected);
  });

  it.each<[WritePrecondition, string | undefined, boolean]>([
    [{ kind: 'create' }, undefined, true],
    [{ kind: 'create' }, '5', false],
    [{ kind: 'match', versions: ['5'] }, '5', true],
    [{ kind: 'match', versions: ['5'] }, '6', false],
    [{ kind: 'match', versions: ['5'] }, undefined, false],
    [{ kind: 'exists' }, '1', true],
    [{ kind: 'exists' }, undefined, false],
    [{ kind: 'none' }, undefined, true],
  ])('%j holds for version %j: %j', (precondition, current, holds) => {
    expect(preconditionHolds(precondition, current)).toBe(holds);
  });
});
