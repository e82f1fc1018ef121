import { describe, expect, it } from 'vitest';
import { announcesBody, jsonMediaType } from './json-body.ts';

describe('jsonMediaType', () => {
  it.each([
    ['application/json', 'json'],
    ['Application/JSON', 'json'],
    ['application/json; charset=utf-8', 'json'],
    ['application/json;charset="UTF-8"', 'json'],
    ['application/json;', 'json'],
    ['application/json; charset=latin1', 'bad_charset'],
    ['application/json; boundary=x', 'bad_charset'],
    ['text/plain', 'not_json'],
    ['application/x-www-form-urlencoded', 'not_json'],
    ['multipart/form-data; boundary=x', 'not_json'],
    ['application/merge-patch+json', 'not_json'],
    ['', 'not_json'],
    [undefined, 'not_json'],
  ])('%j is %s', (contentType, expected) => {
    expect(jsonMediaType(contentType)).toBe(expected);
  });
});

describe('announcesBody', () => {
  it.each([
    [{}, false],
    [{ 'content-length': '0' }, false],
    [{ 'content-length': '12' }, true],
    [{ 'transfer-encoding': 'chunked' }, true],
  ])('%j: %s', (headers, expected) => {
    expect(announcesBody(headers)).toBe(expected);
  });
});
