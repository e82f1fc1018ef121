// The signer reproduces AWS's documented signatures, and adds the session token of temporary credentials.
import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { emptyPayloadSha256, KeyedSha256, S3Signer } from './s3-signing.ts';

// The "GET Object" example of the S3 Signature Version 4 documentation.
const example = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
const date = new Date('2013-05-24T00:00:00Z');
const request = {
  method: 'GET',
  hostname: 'examplebucket.s3.amazonaws.com',
  path: '/test.txt',
  headers: { host: 'examplebucket.s3.amazonaws.com', range: 'bytes=0-9', 'x-amz-content-sha256': emptyPayloadSha256 },
};

describe('S3Signer', () => {
  it('reproduces the documented signature of a ranged GET', async () => {
    const headers = await new S3Signer('us-east-1', () => Promise.resolve(example)).sign(request, date);
    expect(headers['x-amz-date']).toBe('20130524T000000Z');
    expect(headers.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
    expect(headers['x-amz-security-token']).toBeUndefined();
  });

  it('sends and signs the session token of temporary credentials', async () => {
    const headers = await new S3Signer('us-east-1', () => Promise.resolve({ ...example, sessionToken: 'the-session-token' })).sign(
      request,
      date,
    );
    expect(headers['x-amz-security-token']).toBe('the-session-token');
    expect(headers.authorization).toContain('SignedHeaders=host;range;x-amz-content-sha256;x-amz-date;x-amz-security-token,');
    expect(headers.authorization).not.toContain('f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41');
  });

  it('asks the provider for every request, so rotated credentials sign the next one', async () => {
    let current = example;
    const signer = new S3Signer('us-east-1', () => Promise.resolve(current));
    expect((await signer.sign(request, date)).authorization).toContain('Credential=AKIAIOSFODNN7EXAMPLE/');
    current = { accessKeyId: 'AKIAROTATED', secretAccessKey: 'rotated-secret' };
    expect((await signer.sign(request, date)).authorization).toContain('Credential=AKIAROTATED/');
  });

  it('does not change the request it was given', async () => {
    const headers = { ...request.headers };
    await new S3Signer('us-east-1', () => Promise.resolve(example)).sign({ ...request, headers }, date);
    expect(headers).toEqual(request.headers);
  });
});

describe('KeyedSha256', () => {
  const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
  const secretBytes = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);

  it.each([
    ['no secret', undefined, createHash('sha256')],
    ['a string secret', 'AWS4secret', createHmac('sha256', 'AWS4secret')],
    ['a byte secret', secretBytes, createHmac('sha256', secretBytes)],
  ])('with %s gives what Node gives, again after reset and for a second instance of the same key', async (_, secret, node) => {
    const expected = node
      .update('20130524')
      .update(new Uint8Array([9, 9]))
      .digest('hex');
    for (let round = 0; round < 2; round++) {
      const hash = new KeyedSha256(secret);
      hash.update('20130524');
      hash.update(new Uint8Array([9, 9]));
      expect(hex(await hash.digest())).toBe(expected);
      hash.reset();
      hash.update('20130524');
      hash.update(new Uint8Array([9, 9]).buffer);
      expect(hex(await hash.digest())).toBe(expected);
    }
  });

  it('keys by content for strings and by the array for bytes, so a changed secret gives another HMAC', async () => {
    const a = new KeyedSha256('first');
    a.update('x');
    const b = new KeyedSha256('second');
    b.update('x');
    expect(hex(await a.digest())).not.toBe(hex(await b.digest()));
    const bytes = new Uint8Array([1, 2, 3]);
    const other = new Uint8Array([3, 2, 1]);
    const c = new KeyedSha256(bytes);
    c.update('x');
    const d = new KeyedSha256(other);
    d.update('x');
    expect(hex(await c.digest())).toBe(createHmac('sha256', bytes).update('x').digest('hex'));
    expect(hex(await d.digest())).toBe(createHmac('sha256', other).update('x').digest('hex'));
  });
});
