// AWS Signature Version 4 for the block store's S3 requests, by AWS's maintained signer
// (@smithy/signature-v4, with Node's crypto behind KeyedSha256 below) rather than by our own
// code. Requests are signed with the payload hash in `x-amz-content-sha256` (the empty body's
// for the requests without one; a block PUT sends `UNSIGNED-PAYLOAD` with its signed
// `x-amz-checksum-sha256`, ADR 77), so bodies stream afterwards, never buffered for signing. The signer
// caches derived signing keys per day, region and credentials; credentials come from a
// provider, so a rotated key or session token is picked up on the next request.
import { createHash, createHmac, createSecretKey, type Hash, type Hmac, type KeyObject } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import type { S3Identity } from './s3-credentials.ts';

/** What a request to sign consists of. */
export interface SignableRequest {
  method: string;
  /** The host name the request goes to (the virtual host in virtual-hosted addressing). */
  hostname: string;
  /** Path, already URI-encoded per S3 rules ("/bucket/blocks/ab12..."). */
  path: string;
  /** Headers to sign, lower-case names; must include host and x-amz-content-sha256. */
  headers: Record<string, string>;
}

/** sha256 of an empty payload, for requests without a body. */
export const emptyPayloadSha256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

// HMAC keys the signer uses again and again (the secret key, for the cache key it computes per
// request; the day's signing key, for every signature), each turned into a KeyObject once. Node
// tells a KeyObject from raw bytes by catching a throw, which costs several times the HMAC of a
// few hundred bytes; given a KeyObject it does not throw.
const keysOfBytes = new WeakMap<Uint8Array, KeyObject>();
const keysOfStrings = new Map<string, KeyObject>();
const maxStringKeys = 16;

function keyObjectOf(secret: string | ArrayBuffer | ArrayBufferView): KeyObject {
  if (typeof secret === 'string') {
    let key = keysOfStrings.get(secret);
    if (key === undefined) {
      // Rotated credentials leave old entries behind: keep only a few.
      if (keysOfStrings.size >= maxStringKeys) keysOfStrings.clear();
      key = createSecretKey(Buffer.from(secret, 'utf8'));
      keysOfStrings.set(secret, key);
    }
    return key;
  }
  const bytes =
    secret instanceof Uint8Array
      ? secret
      : ArrayBuffer.isView(secret)
        ? new Uint8Array(secret.buffer, secret.byteOffset, secret.byteLength)
        : new Uint8Array(secret);
  let key = keysOfBytes.get(bytes);
  if (key === undefined) {
    key = createSecretKey(bytes);
    keysOfBytes.set(bytes, key);
  }
  return key;
}

/** SHA-256, or HMAC-SHA-256 when given a secret, in the shape the signer asks for (the `sha256` option). */
export class KeyedSha256 {
  readonly #secret: string | ArrayBuffer | ArrayBufferView | undefined;
  #hash: Hash | Hmac;

  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#secret = secret;
    this.#hash = KeyedSha256.#start(secret);
  }

  static #start(secret: string | ArrayBuffer | ArrayBufferView | undefined): Hash | Hmac {
    return secret === undefined ? createHash('sha256') : createHmac('sha256', keyObjectOf(secret));
  }

  update(data: string | ArrayBuffer | ArrayBufferView): void {
    if (typeof data === 'string') this.#hash.update(data, 'utf8');
    else if (ArrayBuffer.isView(data)) this.#hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    else this.#hash.update(new Uint8Array(data));
  }

  digest(): Promise<Uint8Array> {
    const out = this.#hash.digest();
    return Promise.resolve(new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
  }

  reset(): void {
    this.#hash = KeyedSha256.#start(this.#secret);
  }
}

/** Signs S3 requests with SigV4 for one region. */
export class S3Signer {
  readonly #signer: SignatureV4;

  constructor(region: string, credentials: () => Promise<S3Identity>) {
    this.#signer = new SignatureV4({
      service: 's3',
      region,
      credentials,
      sha256: KeyedSha256,
      // S3 signs the path as sent, without a second round of encoding.
      uriEscapePath: false,
      applyChecksum: false,
    });
  }

  /**
   * The headers to send: the given ones plus `x-amz-date`, `authorization` and, for temporary
   * credentials, `x-amz-security-token`.
   */
  async sign(request: SignableRequest, date = new Date()): Promise<Record<string, string>> {
    const signed = await this.#signer.sign(
      {
        method: request.method,
        protocol: 'https:',
        hostname: request.hostname,
        path: request.path,
        query: {},
        headers: { ...request.headers },
      },
      { signingDate: date },
    );
    return signed.headers;
  }

  /**
   * The query of a presigned request (SigV4 query authentication): `host` is signed, and so are
   * `headers` (which whoever uses the URL must then send as they are), the payload is
   * `UNSIGNED-PAYLOAD` as S3 expects of a presigned URL, and the signature holds for
   * `expiresInSeconds`. The caller appends it to the request's URL.
   */
  async presign(
    request: Omit<SignableRequest, 'headers'> & { host: string; headers?: Record<string, string> },
    expiresInSeconds: number,
    date = new Date(),
  ): Promise<URLSearchParams> {
    const headers = request.headers ?? {};
    const presigned = await this.#signer.presign(
      {
        method: request.method,
        protocol: 'https:',
        hostname: request.hostname,
        path: request.path,
        query: {},
        headers: { ...headers, host: request.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
      },
      // The given headers stay headers (the signer would otherwise move `x-amz-*` ones into the query).
      { signingDate: date, expiresIn: expiresInSeconds, unhoistableHeaders: new Set(Object.keys(headers)) },
    );
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(presigned.query ?? {})) {
      if (typeof value === 'string') query.set(name, value);
    }
    return query;
  }
}
