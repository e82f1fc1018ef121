import { describe, expect, it } from 'vitest';
import { amzDate, emptyPayloadSha256, S3Signer } from './s3-signing.ts';

// The "GET Object" example of the S3 Signature Version 4 documentation.
const example = {
  accessKey: 'AKIAIOSFODNN7EXAMPLE',
  secretKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  region: 'us-east-1',
};

describe('S3Signer', () => {
  it('reproduces the documented signature of a ranged GET', () => {
    const date = new Date('2013-05-24T00:00:00Z');
    const authorization = new S3Signer(example).authorization(
      {
        method: 'GET',
        path: '/test.txt',
        query: '',
        headers: { host: 'examplebucket.s3.amazonaws.com', range: 'bytes=0-9', 'x-amz-content-sha256': emptyPayloadSha256, 'x-amz-date': amzDate(date) },
      },
      date,
    );
    expect(authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
  });

  it.each([
    ['2013-05-24T00:00:00.000Z', '20130524T000000Z'],
    ['2026-11-26T23:05:09.123Z', '20261126T230509Z'],
  ])('formats %s as %s', (iso, stamp) => {
    expect(amzDate(new Date(iso))).toBe(stamp);
  });
});
