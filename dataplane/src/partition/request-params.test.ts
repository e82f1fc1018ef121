import { describe, expect, it } from 'vitest';
import { checkPercentEncoding, pageLimit, queryOf, queryValue } from './request-params.ts';

describe('checkPercentEncoding', () => {
  it.each([
    ['/v1/objects/abc', undefined],
    ['/v1/objects/abc/entries/a%20b/%C3%A9', undefined],
    ['/v1/objects/%ff', 'invalid_request'],
    ['/v1/blocks/%zz', 'invalid_request'],
    ['/v1/%ff/x', 'invalid_request'],
    ['/v1/objects/%ff/entries/a', 'invalid_request'],
    ['/v1/objects/abc/entries/a/%C0%AF', 'invalid_path'],
    ['/v1/objects/abc/content/%E0%A4%A', 'invalid_path'],
  ])('%s: %s', (path, code) => {
    if (code === undefined) expect(() => checkPercentEncoding(path)).not.toThrow();
    else expect(() => checkPercentEncoding(path)).toThrow(expect.objectContaining({ code }));
  });
});

describe('pageLimit', () => {
  it.each([
    [undefined, undefined, 1000],
    ['5', undefined, 5],
    [undefined, { limit: 7 }, 7],
    ['5', { limit: 7 }, 5],
    [undefined, {}, 1000],
  ])('limit %j with token %j: %i', (value, token, expected) => {
    expect(pageLimit(value, token)).toBe(expected);
  });
});

describe('queryOf', () => {
  it.each([
    ['/v1/notifications', {}],
    ['/v1/notifications?', {}],
    ['/v1/notifications?cursor=12&wait=30', { cursor: '12', wait: '30' }],
    ['/v1/notifications?cursor=1&cursor=2', { cursor: ['1', '2'] }],
    ['/v1/notifications?wait=5#cursor=9', { wait: '5' }],
    ['/v1/notifications#x?wait=5', {}],
    ['/v1/notifications?cursor=a%20b&wait', { cursor: 'a b', wait: '' }],
  ])('reads %s as express reads its query', (url, expected) => {
    expect({ ...queryOf(url) }).toEqual(expected);
  });

  it('refuses a parameter given twice, naming it', () => {
    expect(() => queryValue(queryOf('/v1/notifications?cursor=1&cursor=2'), 'cursor')).toThrow(/cursor: must be given once/);
    expect(queryValue(queryOf('/v1/notifications?cursor=1'), 'cursor')).toBe('1');
    expect(queryValue(queryOf('/v1/notifications'), 'cursor')).toBeUndefined();
  });
});
