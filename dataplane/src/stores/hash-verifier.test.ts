import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { BlockHashMismatchError, BlockSizeMismatchError, HashVerifier } from './hash-verifier.ts';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function run(chunks: Buffer[], expected: string, bytes?: number): Promise<{ passed: Buffer; error?: unknown }> {
  const passed: Buffer[] = [];
  try {
    await pipeline(Readable.from(chunks), new HashVerifier(expected, bytes), async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) passed.push(chunk);
    });
    return { passed: Buffer.concat(passed) };
  } catch (error) {
    return { passed: Buffer.concat(passed), error };
  }
}

describe('HashVerifier', () => {
  const body = [Buffer.from('hello '), Buffer.from('mesh '), Buffer.from('world')];
  const whole = Buffer.concat(body);

  it('passes matching content through unchanged', async () => {
    const result = await run(body, sha(whole), whole.length);
    expect(result.error).toBeUndefined();
    expect(result.passed.equals(whole)).toBe(true);
  });

  it('fails on a hash mismatch before passing the last chunk on', async () => {
    const result = await run(body, sha(Buffer.from('other')));
    expect(result.error).toBeInstanceOf(BlockHashMismatchError);
    expect(result.passed.length).toBeLessThan(whole.length);
  });

  it.each([whole.length - 1, whole.length + 1])('fails when the length is not the announced %i', async (bytes) => {
    const result = await run(body, sha(whole), bytes);
    expect(result.error).toBeInstanceOf(BlockSizeMismatchError);
    expect(result.passed.length).toBeLessThan(whole.length);
  });
});
