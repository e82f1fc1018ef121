// The declared size of a block upload, as a table: 411 without Content-Length, 400 unless it
// is a positive integer, 413 over the largest block.
import { ApiError } from '@meshwork/contract';
import { describe, expect, it } from 'vitest';
import { maxBlockBytes } from '../schemas.ts';
import { uploadSize } from './blocks.ts';

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
