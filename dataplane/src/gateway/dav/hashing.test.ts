import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { UploadHashes } from './hashing.ts';

const hex = (algorithm: string, ...parts: Uint8Array[]): string => {
  const hash = createHash(algorithm);
  for (const p of parts) hash.update(p);
  return hash.digest('hex');
};

/** `body` cut into chunks of the given sizes, cycled. */
const chunked = (body: Uint8Array, sizes: number[]): Uint8Array[] => {
  const out: Uint8Array[] = [];
  for (let at = 0, i = 0; at < body.byteLength; i++) {
    const n = Math.min(sizes[i % sizes.length]!, body.byteLength - at);
    out.push(body.subarray(at, at + n));
    at += n;
  }
  return out;
};

describe('UploadHashes', () => {
  it('hashes an empty body', () => {
    const hashes = new UploadHashes(16);
    expect(hashes.digests()).toEqual({ sha1: hex('sha1'), md5: hex('md5') });
  });

  it('names a body of one short block once the body ended', () => {
    const body = randomBytes(10);
    const hashes = new UploadHashes(16);
    for (const c of chunked(body, [3])) hashes.chunk(c);
    expect(hashes.block(10)).toBe(hex('sha256', body));
    expect(hashes.digests()).toEqual({ sha1: hex('sha1', body), md5: hex('md5', body) });
  });

  it('names each block however the chunks fall across block boundaries', () => {
    const blockSize = 16;
    const body = randomBytes(5 * blockSize + 7);
    const blocks = [0, 1, 2, 3, 4, 5].map((i) => body.subarray(i * blockSize, Math.min((i + 1) * blockSize, body.byteLength)));
    // Chunks shorter than a block, spanning two, and longer than two.
    for (const sizes of [[5], [16], [21, 3], [40], [1, 50, 2]]) {
      const hashes = new UploadHashes(blockSize);
      const names: string[] = [];
      let fed = 0;
      for (const c of chunked(body, sizes)) {
        hashes.chunk(c);
        fed += c.byteLength;
        // A whole block is named as soon as its last byte went in, before the body ends.
        while (names.length < Math.floor(fed / blockSize)) names.push(hashes.block(blockSize));
      }
      names.push(hashes.block(7));
      expect(names).toEqual(blocks.map((b) => hex('sha256', b)));
      expect(hashes.digests()).toEqual({ sha1: hex('sha1', body), md5: hex('md5', body) });
    }
  });

  it('names a body that ends on a block boundary without a short block', () => {
    const body = randomBytes(32);
    const hashes = new UploadHashes(16);
    hashes.chunk(body);
    expect([hashes.block(16), hashes.block(16)]).toEqual([hex('sha256', body.subarray(0, 16)), hex('sha256', body.subarray(16))]);
    expect(() => hashes.block(16)).toThrow(/16 bytes where 0 were hashed/);
  });

  it('refuses a block size that does not match what was hashed', () => {
    const hashes = new UploadHashes(16);
    hashes.chunk(randomBytes(20));
    expect(() => hashes.block(20)).toThrow(/a block of 20 bytes where a whole block of 16/);
    const short = new UploadHashes(16);
    short.chunk(randomBytes(5));
    expect(() => short.block(4)).toThrow(/a block of 4 bytes where 5 were hashed/);
  });

  it('cuts at 4 MiB by default', () => {
    const body = randomBytes(4 * 1024 * 1024 + 1);
    const hashes = new UploadHashes();
    for (const c of chunked(body, [65536])) hashes.chunk(c);
    expect(hashes.block(4 * 1024 * 1024)).toBe(hex('sha256', body.subarray(0, 4 * 1024 * 1024)));
    expect(hashes.block(1)).toBe(hex('sha256', body.subarray(4 * 1024 * 1024)));
  });
});
