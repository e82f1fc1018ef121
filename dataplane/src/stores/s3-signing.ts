// AWS Signature Version 4 for S3 requests whose payload hash is known up front (a block's
// sha256 is its name). The signing key is derived once per day and region, not per request.
import { createHash, createHmac } from 'node:crypto';

/** What a request to sign consists of. */
export interface SignableRequest {
  method: string;
  /** Path, already URI-encoded per S3 rules ("/bucket/blocks/ab12..."). */
  path: string;
  /** Canonical query string (sorted, encoded), "" when none. */
  query: string;
  /** Headers to sign, lower-case names; must include host and x-amz-content-sha256. */
  headers: Record<string, string>;
}

/** Credentials and scope of a signer. */
export interface SigningCredentials {
  accessKey: string;
  secretKey: string;
  region: string;
}

/** sha256 of an empty payload, for requests without a body. */
export const emptyPayloadSha256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** The x-amz-date form of a time: 20130524T000000Z. */
export function amzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/** Signs S3 requests, caching the derived signing key per day. */
export class S3Signer {
  readonly #credentials: SigningCredentials;
  #key: { day: string; key: Buffer } | undefined;

  constructor(credentials: SigningCredentials) {
    this.#credentials = credentials;
  }

  /** The Authorization header for `request` at `date`; the request must carry x-amz-date = amzDate(date). */
  authorization(request: SignableRequest, date: Date): string {
    const stamp = amzDate(date);
    const day = stamp.slice(0, 8);
    const names = Object.keys(request.headers)
      .map((n) => n.toLowerCase())
      .sort();
    const lower = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k.toLowerCase(), v]));
    const canonicalHeaders = names.map((n) => `${n}:${String(lower[n]).trim().replace(/\s+/g, ' ')}\n`).join('');
    const signedHeaders = names.join(';');
    const canonicalRequest = [request.method, request.path, request.query, canonicalHeaders, signedHeaders, lower['x-amz-content-sha256']].join('\n');
    const scope = `${day}/${this.#credentials.region}/s3/aws4_request`;
    const stringToSign = ['AWS4-HMAC-SHA256', stamp, scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
    const signature = createHmac('sha256', this.#signingKey(day)).update(stringToSign).digest('hex');
    return `AWS4-HMAC-SHA256 Credential=${this.#credentials.accessKey}/${scope},SignedHeaders=${signedHeaders},Signature=${signature}`;
  }

  #signingKey(day: string): Buffer {
    if (this.#key?.day === day) return this.#key.key;
    const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data).digest();
    const key = hmac(hmac(hmac(hmac(`AWS4${this.#credentials.secretKey}`, day), this.#credentials.region), 's3'), 'aws4_request');
    this.#key = { day, key };
    return key;
  }
}
