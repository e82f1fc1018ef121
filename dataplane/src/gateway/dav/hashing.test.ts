import { createHash, randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { HashWorker, inlineHashBytes, UploadHashes } from './hashing.ts';

const hex = (algorithm: string, ...parts: Uint8Array[]): string => {
  const hash = createHash(algorithm);
  for (const p of parts) hash.update(p);
  return hash.digest('hex');
};

describe('UploadHashes', () => {
  const worker = new HashWorker();
  afterAll(() => worker.close());

  it('hashes a body of one small block on the event loop', async () => {
    const block = randomBytes(4096);
    const hashes = new UploadHashes(worker);
    const { sha256, data } = await hashes.block(block, true);
    expect(sha256).toBe(hex('sha256', block));
    expect(data).toBe(block);
    expect(await hashes.digests()).toEqual({ sha1: hex('sha1', block), md5: hex('md5', block) });
  });

  it('hashes an empty body', async () => {
    const hashes = new UploadHashes(worker);
    expect(await hashes.digests()).toEqual({ sha1: hex('sha1'), md5: hex('md5') });
  });

  it('hashes blocks on the worker, in order, and gives their bytes back', async () => {
    const a = randomBytes(inlineHashBytes + 1);
    const whole = randomBytes(300_000);
    const b = whole.subarray(1000, 250_000); // a view of a larger buffer: copied out, the buffer left alone
    const c = new Uint8Array(randomBytes(10));
    const [copyOfA, copyOfB, copyOfC] = [Buffer.from(a), Buffer.from(b), Buffer.from(c)];
    // Two uploads at once on the one worker keep their own SHA1 and MD5.
    const first = new UploadHashes(worker);
    const second = new UploadHashes(worker);
    const answers = await Promise.all([first.block(a, false), second.block(c, true), first.block(b, false), first.block(c, false)]);
    expect(answers.map((x) => x.sha256)).toEqual([
      hex('sha256', copyOfA),
      hex('sha256', copyOfC),
      hex('sha256', copyOfB),
      hex('sha256', copyOfC),
    ]);
    expect(Buffer.from(answers[0].data).equals(copyOfA)).toBe(true);
    expect(Buffer.from(answers[2].data).equals(copyOfB)).toBe(true);
    expect(Buffer.from(answers[3].data).equals(copyOfC)).toBe(true);
    expect(Buffer.from(b).equals(copyOfB)).toBe(true);
    expect(await first.digests()).toEqual({ sha1: hex('sha1', copyOfA, copyOfB, copyOfC), md5: hex('md5', copyOfA, copyOfB, copyOfC) });
    expect(await second.digests()).toEqual({ sha1: hex('sha1', copyOfC), md5: hex('md5', copyOfC) });
  });
});
