import { describe, expect, it } from 'vitest';
import { containsDesired, firstDifference, quantityValue } from './compare.ts';

describe('containsDesired', () => {
  it.each([
    { case: 'equal scalars', desired: { a: 1 }, observed: { a: 1 }, expected: true },
    { case: 'extra live fields', desired: { a: 1 }, observed: { a: 1, b: 2 }, expected: true },
    { case: 'changed value', desired: { a: 1 }, observed: { a: 2 }, expected: false },
    { case: 'removed field', desired: { a: { b: 'x' } }, observed: { a: {} }, expected: false },
    {
      case: 'defaulted list items',
      desired: { ports: [{ port: 80 }] },
      observed: { ports: [{ port: 80, protocol: 'TCP' }] },
      expected: true,
    },
    { case: 'list grown by hand', desired: { l: [1] }, observed: { l: [1, 2] }, expected: false },
    { case: 'empty list the API server dropped', desired: { l: [] }, observed: {}, expected: true },
    { case: 'empty list where one was added by hand', desired: { l: [] }, observed: { l: [1] }, expected: false },
    { case: 'list reordered', desired: { l: ['a', 'b'] }, observed: { l: ['b', 'a'] }, expected: false },
    { case: 'quantity normalised', desired: { cpu: '0.5' }, observed: { cpu: '500m' }, expected: true },
    { case: 'numeric quantity', desired: { cpu: 2 }, observed: { cpu: '2' }, expected: true },
    { case: 'different quantity', desired: { memory: '8Gi' }, observed: { memory: '8G' }, expected: false },
    { case: 'object missing', desired: { a: { b: 1 } }, observed: {}, expected: false },
    { case: 'boolean', desired: { x: false }, observed: { x: false }, expected: true },
    { case: 'string that is not a number', desired: { name: 'a' }, observed: { name: 'b' }, expected: false },
  ])('$case → $expected', ({ desired, observed, expected }) => {
    expect(containsDesired(desired, observed)).toBe(expected);
  });
});

describe('firstDifference', () => {
  it.each([
    { desired: { spec: { replicas: 3 } }, observed: { spec: { replicas: 5 } }, path: 'spec.replicas' },
    { desired: { spec: { l: [1, 2] } }, observed: { spec: { l: [1] } }, path: 'spec.l.length' },
    { desired: { a: 1 }, observed: { a: 1 }, path: undefined },
  ])('finds $path', ({ desired, observed, path }) => {
    expect(firstDifference(desired, observed)).toBe(path);
  });
});

describe('quantityValue', () => {
  it.each([
    { text: '2', value: 2 },
    { text: '500m', value: 0.5 },
    { text: '8Gi', value: 8 * 2 ** 30 },
    { text: '1e3', value: 1000 },
    { text: 'abc', value: undefined },
    { text: '5x', value: undefined },
  ])('$text is $value', ({ text, value }) => {
    expect(quantityValue(text)).toBe(value);
  });
});
