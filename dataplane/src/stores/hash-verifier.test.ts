import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { BlockHashMismatchError, BlockSizeMismatchError, HashVerifier } from './hash-verifier.ts';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function run(
  chunks: Buffer[],
  expected: string,
  bytes?: number,
): Promise<{ passed: Buffer; error?: unknown; verified: number; passedWhenVerified: number | undefined }> {
  const passed: Buffer[] = [];
  let verified = 0;
  let passedWhenVerified: number | undefined;
  const onVerified = (): void => {
    verified++;
    passedWhenVerified = Buffer.concat(passed).length;
  };
  try {
    await pipeline(Readable.from(chunks), new HashVerifier(expected, bytes, onVerified), async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) passed.push(chunk);
    });
    return { passed: Buffer.concat(passed), verified, passedWhenVerified };
  } catch (error) {
    return { passed: Buffer.concat(passed), error, verified, passedWhenVerified };
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

  it('says the content is verified once, before the last chunk is passed on', async () => {
    const result = await run(body, sha(whole), whole.length);
    expect(result.verified).toBe(1);
    expect(result.passedWhenVerified).toBeLessThan(whole.length);
  });

  it('fails on a hash mismatch before passing the last chunk on', async () => {
    const result = await run(body, sha(Buffer.from('other')));
    expect(result.error).toBeInstanceOf(BlockHashMismatchError);
    expect(result.passed.length).toBeLessThan(whole.length);
    expect(result.verified).toBe(0);
  });

  it.each([whole.length - 1, whole.length + 1])('fails when the length is not the announced %i', async (bytes) => {
    const result = await run(body, sha(whole), bytes);
    expect(result.error).toBeInstanceOf(BlockSizeMismatchError);
    expect(result.passed.length).toBeLessThan(whole.length);
    expect(result.verified).toBe(0);
  });
});
