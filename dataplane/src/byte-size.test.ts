import { describe, expect, it } from 'vitest';
import { formatByteSize, parseByteSize } from './byte-size.ts';

describe('parseByteSize', () => {
  it.each([
    ['67108864', 67108864],
    ['64Mi', 64 * 2 ** 20],
    ['1.5Gi', 1.5 * 2 ** 30],
    ['16Gi', 16 * 2 ** 30],
    ['500k', 500_000],
    ['2M', 2_000_000],
    ['1e9', 1_000_000_000],
    [' 4Ki ', 4096],
    ['+64Mi', 64 * 2 ** 20],
    ['1E3', 1000],
    ['0', 0],
  ])('reads %s as %d bytes', (text, bytes) => {
    expect(parseByteSize(text)).toBe(bytes);
  });

  it.each(['', 'Mi', '64 Mi', '-1', '0.5', '1.1Ki', '500m', '64MB', '1e400', '99999999Ei'])('refuses %j', (text) => {
    expect(parseByteSize(text)).toBeUndefined();
  });
});

describe('formatByteSize', () => {
  it.each([
    [64 * 2 ** 20, '64 MiB'],
    [1.5 * 2 ** 30, '1.5 GiB'],
    [4096, '4 KiB'],
    [1000, '1000 bytes'],
  ])('writes %d as %s', (bytes, text) => {
    expect(formatByteSize(bytes)).toBe(text);
  });
});
