import { describe, expect, it } from 'vitest';
import { checkPercentEncoding, pageLimit } from './request-params.ts';

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
