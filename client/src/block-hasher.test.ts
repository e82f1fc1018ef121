// The hashing thread of block downloads (ADR 73): the digests it answers, and the memory it
// hands back for the next block.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { HashBuffers, sha256OffThread } from './block-hasher.ts';

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

describe('sha256OffThread', () => {
  it.each([0, 1, 4096, 4 * 1024 * 1024])('hashes the first %i bytes of the memory and hands the same bytes back', async (length) => {
    const bytes = randomBytes(length + 7);
    const memory = new ArrayBuffer(bytes.length);
    new Uint8Array(memory).set(bytes);
    const answer = await sha256OffThread(memory, length);
    expect(memory.byteLength).toBe(0); // moved, not copied
    expect(answer.digest).toBe(sha256(bytes.subarray(0, length)));
    expect(Buffer.from(answer.memory).equals(bytes)).toBe(true);
  });

  it('answers each of several hashes under way with its own digest', async () => {
    const blocks = Array.from({ length: 6 }, (_, i) => randomBytes(100_000 + i));
    const answers = await Promise.all(
      blocks.map((b) => {
        const memory = new ArrayBuffer(b.length);
        new Uint8Array(memory).set(b);
        return sha256OffThread(memory, b.length);
      }),
    );
    expect(answers.map((a) => a.digest)).toEqual(blocks.map(sha256));
  });

  it('leaves a process free to exit once no hash is under way, started or used', async () => {
    const module = new URL('./block-hasher.ts', import.meta.url).href;
    const script = `import { startHasher, sha256OffThread } from ${JSON.stringify(module)};
      startHasher();
      const { digest } = await sha256OffThread(new ArrayBuffer(3), 3);
      console.log(digest);`;
    // A worker that held the process open would run into the timeout and fail this.
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000 });
    expect(stdout.trim()).toBe(sha256(new Uint8Array(3)));
  });

  it('refuses a length beyond the memory', async () => {
    await expect(sha256OffThread(new ArrayBuffer(10), 11)).rejects.toThrow(RangeError);
    await expect(sha256OffThread(new ArrayBuffer(10), -1)).rejects.toThrow(RangeError);
  });
});

describe('HashBuffers', () => {
  it('hands back a spare buffer large enough, keeps at most `keep`, and makes new memory otherwise', () => {
    const buffers = new HashBuffers(2);
    const big = buffers.take(1000);
    const small = buffers.take(10);
    const third = buffers.take(10);
    expect([big.byteLength, small.byteLength, third.byteLength]).toEqual([1000, 10, 10]);
    buffers.give(small);
    buffers.give(big);
    buffers.give(third); // beyond `keep`: dropped
    expect(buffers.take(500)).toBe(big);
    expect(buffers.take(5)).toBe(small);
    expect(buffers.take(5)).not.toBe(third);
  });
});
