// Content blocks in S3 (MinIO in tests), addressed by sha256 under `blocks/{sha256}`. Writes
// stream through a hash check and carry the sha256 as the checksum S3 checks and keeps; reads
// are hashed unless the store's kept checksum names the block (ADR 77). The store never holds a
// block whose bytes do not match its name. Requests are plain HTTP over a keep-alive pool,
// signed with SigV4 by AWS's maintained signer (s3-signing.ts): the partition needs four S3
// operations, and a full S3 client costs memory. Around the wire it adds what an S3 client would:
// - credentials from values or files, re-read when the files change and once more when S3
//   refuses them (s3-credentials.ts), with a session token for temporary credentials;
// - path-style (`host/bucket/key`, the default, what MinIO serves without a domain) or
//   virtual-hosted (`bucket.host/key`) addressing;
// - retries with capped exponential backoff and full jitter for HEAD and GET when S3 answers
//   `SlowDown`, `503` or `500 InternalError`, or a reused socket was reset (s3-retry.ts). A PUT
//   is tried once: its body streams from the client and is not kept, and a retry would need the
//   whole block in memory; the client repeats the upload after the partition's `503`;
// - S3's XML error bodies read with an XML parser (s3-errors.ts).
import { Agent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { finished, type Readable, type Transform, type Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { MeshworkError } from '@meshwork/contract';
import { BlockHashMismatchError, BlockSizeMismatchError, HashVerifier } from './hash-verifier.ts';
import { S3Credentials } from './s3-credentials.ts';
import { credentialErrorCodes, describeS3Error, parseS3Error, type S3ErrorDetails } from './s3-errors.ts';
import { defaultS3RetryPolicy, isRetryableNetworkError, isRetryableS3Answer, s3RetryDelayMs, type S3RetryPolicy } from './s3-retry.ts';
import { emptyPayloadSha256, S3Signer } from './s3-signing.ts';

/** Where the block store lives and how to sign requests to it. */
export interface BlockStoreOptions {
  endpoint: URL;
  bucket: string;
  region: string;
  accessKey: string;
  secretKey: string;
  /** The session token of temporary credentials, sent as `x-amz-security-token`. */
  sessionToken?: string | undefined;
  /** Files the credentials were read from; they are re-read when they change (rotation). */
  credentialFiles?: { accessKey?: string | undefined; secretKey?: string | undefined; sessionToken?: string | undefined } | undefined;
  /** `path` (default): `endpoint/bucket/key`; `virtual`: `bucket.endpoint/key`. */
  addressing?: 'path' | 'virtual' | undefined;
  /** Retries of idempotent requests; the defaults are `defaultS3RetryPolicy`. */
  retry?: Partial<S3RetryPolicy> | undefined;
  /** Resolves host names instead of the system resolver (a virtual host in a test, a private resolver). */
  lookup?: LookupFunction | undefined;
  /**
   * `store` (default): a block read whose sha256 checksum, kept by the store since the block was
   * written, names the block is not hashed again by the reader; `hash`: every read is hashed
   * (ADR 77). Either way every block is written with its checksum.
   */
  readCheck?: 'store' | 'hash' | undefined;
  /** Told of every block `read`, whether the store vouched for it (for `meshwork_block_reads_total`). */
  onRead?: ((storeChecked: boolean) => void) | undefined;
}

/** A block's bytes as the store sends them, and whether the store vouches for them (ADR 77). */
export interface BlockBody {
  body: Readable;
  /** The store kept the block's sha256 checksum since its write, and it names the block: no need to hash it. */
  storeChecked: boolean;
}

/**
 * Runs one S3 exchange (`operation`: HeadBucket, HeadObject, GetObject, PutObject); telemetry
 * uses it to time and trace the call, and hands `run` the trace headers to send. `failed` tells
 * an answer that is a failure (a 5xx) from one that is not. Each attempt of a retried request
 * is one exchange.
 */
export type S3CallHook = <T>(
  operation: string,
  run: (traceHeaders: Record<string, string>) => Promise<T>,
  failed?: (result: T) => boolean,
) => Promise<T>;

const untracedCall: S3CallHook = (_operation, run) => run({});

function isServerError(res: IncomingMessage): boolean {
  return (res.statusCode ?? 0) >= 500;
}

/** Raised when the S3 endpoint fails or answers unexpectedly; `s3` holds what S3 said, when it answered. */
export class BlockStoreError extends MeshworkError {
  readonly s3: S3ErrorDetails | undefined;

  constructor(message: string, options: { cause?: unknown; s3?: S3ErrorDetails } = {}) {
    super('block_store_failed', message, { cause: options.cause });
    this.s3 = options.s3;
  }
}

/** The key of a block in the bucket. */
export function blockKey(sha256: string): string {
  return `blocks/${sha256}`;
}

// A block's size follows from its name, so a remembered size stays true even after the collector
// deleted the block (presence is decided in etcd, ADR 24); it saves a HEAD per block on commit.
const knownBlockLimit = 200_000;
// A HEAD or the headers of a GET must come back within this; bodies stream without a deadline.
const headerTimeoutMs = 30_000;
// Enough of an error body for S3's XML; the rest is drained, not kept.
const errorBodyLimit = 16 * 1024;
// A PUT's payload is not hashed for its signature: the signed `x-amz-checksum-sha256` covers it.
const unsignedPayload = 'UNSIGNED-PAYLOAD';
// Asks a GET for the checksum the store kept (AWS S3 and MinIO answer it for whole-object reads).
const checksumModeHeaders = { 'x-amz-checksum-mode': 'ENABLED' };
// What S3 (BadDigest) and MinIO (XAmzContentChecksumMismatch) answer a body that does not match its checksum.
const checksumMismatchCodes = new Set(['BadDigest', 'XAmzContentChecksumMismatch']);

/** The metadata header a presigned block PUT carries: whom the URL was given to, opaquely (ADR 80). */
export const uploadTagHeader = 'x-amz-meta-meshwork-upload';

/** A block's name as S3 writes a sha256 checksum: the digest's bytes in base64. */
function checksumOf(sha256: string): string {
  return Buffer.from(sha256, 'hex').toString('base64');
}

/** An answer after retries: the response, and what S3 said when it was a failure (its body then read). */
interface Answer {
  res: IncomingMessage;
  error: S3ErrorDetails | undefined;
}

/** Content-addressed block storage on S3. */
export class BlockStore {
  readonly #bucket: string;
  readonly #endpoint: URL;
  readonly #useSSL: boolean;
  readonly #port: number;
  readonly #virtualHosted: boolean;
  readonly #agent: Agent | HttpsAgent;
  readonly #credentials: S3Credentials;
  readonly #signer: S3Signer;
  readonly #retry: S3RetryPolicy;
  readonly #lookup: LookupFunction | undefined;
  readonly #known = new Map<string, number>();
  readonly #call: S3CallHook;
  readonly #readCheck: 'store' | 'hash';
  readonly #onRead: ((storeChecked: boolean) => void) | undefined;

  constructor(options: BlockStoreOptions, call: S3CallHook = untracedCall) {
    this.#call = call;
    this.#useSSL = options.endpoint.protocol === 'https:';
    this.#port = options.endpoint.port === '' ? (this.#useSSL ? 443 : 80) : Number(options.endpoint.port);
    // Keep-alive sockets: a small-file workload makes one S3 request per block.
    this.#agent = this.#useSSL ? new HttpsAgent({ keepAlive: true, maxSockets: 64 }) : new Agent({ keepAlive: true, maxSockets: 64 });
    this.#bucket = options.bucket;
    this.#endpoint = options.endpoint;
    this.#virtualHosted = options.addressing === 'virtual';
    this.#retry = { ...defaultS3RetryPolicy, ...options.retry };
    this.#lookup = options.lookup;
    this.#readCheck = options.readCheck ?? 'store';
    this.#onRead = options.onRead;
    this.#credentials = new S3Credentials({
      accessKey: options.accessKey,
      secretKey: options.secretKey,
      sessionToken: options.sessionToken,
      files: options.credentialFiles,
    });
    this.#signer = new S3Signer(options.region, () => this.#credentials.current());
  }

  /** Checks that the bucket answers; for readiness and start-up. */
  async ping(): Promise<void> {
    const { res, error } = await this.#send('HeadBucket', 'HEAD', undefined);
    res.resume();
    if (res.statusCode === 404) throw new BlockStoreError(`bucket ${this.#bucket} does not exist`, { s3: error });
    if (error !== undefined) throw new BlockStoreError(`bucket ${this.#bucket} answered ${describeS3Error(error)}`, { s3: error });
  }

  /** The size of a stored block, or undefined when the store lacks it. */
  async sizeOf(sha256: string): Promise<number | undefined> {
    const known = this.#known.get(sha256);
    if (known !== undefined) return known;
    const { res, error } = await this.#send('HeadObject', 'HEAD', blockKey(sha256));
    res.resume();
    if (res.statusCode === 404) return undefined;
    if (error !== undefined) throw new BlockStoreError(`looking up block ${sha256} answered ${describeS3Error(error)}`, { s3: error });
    const size = Number(res.headers['content-length']);
    if (!Number.isSafeInteger(size)) throw new BlockStoreError(`looking up block ${sha256} answered without a Content-Length`);
    this.#remember(sha256, size);
    return size;
  }

  /** Sizes of the listed blocks (undefined for each one the store lacks), looked up in parallel. */
  async sizesOf(sha256s: readonly string[]): Promise<Map<string, number | undefined>> {
    const unique = [...new Set(sha256s)];
    const sizes = new Map<string, number | undefined>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < unique.length) {
        const sha = unique[next++]!;
        sizes.set(sha, await this.sizeOf(sha));
      }
    };
    await Promise.all(Array.from({ length: Math.min(16, unique.length) }, worker));
    return sizes;
  }

  /**
   * Stores `size` bytes from `body` as block `sha256`. The bytes are hashed on the way; S3 is
   * also given the expected sha256 as the block's checksum (x-amz-checksum-sha256), which it
   * checks and keeps, so neither a mismatch nor a truncated body ever becomes visible under the
   * block's key. Tried once (see the file's header); when S3 refused the credentials, their
   * files are re-read so that the client's retry uses new ones.
   * `onVerified` is called once the whole body hashed to `sha256`, while S3 may still be storing
   * it: S3 has not answered yet, and may still fail.
   */
  async put(sha256: string, size: number, body: Readable, onVerified?: () => void): Promise<void> {
    await this.#call('PutObject', (traceHeaders) => this.#put(sha256, size, body, traceHeaders, onVerified));
  }

  async #put(
    sha256: string,
    size: number,
    body: Readable,
    traceHeaders: Record<string, string>,
    onVerified: (() => void) | undefined,
  ): Promise<void> {
    const verifier = new HashVerifier(sha256, size, onVerified);
    let req: ClientRequest;
    try {
      // The store checks the body against the signed checksum and keeps it with the block, for
      // reads to compare with the block's name (ADR 77); the payload is not hashed a second time
      // for the signature. HashVerifier holds back the last chunk of a mismatching body anyway.
      req = await this.#request(
        'PUT',
        blockKey(sha256),
        unsignedPayload,
        { 'content-length': String(size), 'x-amz-checksum-sha256': checksumOf(sha256) },
        traceHeaders,
      );
    } catch (err) {
      throw new BlockStoreError(`could not store block ${sha256}: ${(err as Error).message}`, { cause: err });
    }
    const answered = new Promise<IncomingMessage>((resolve, reject) => {
      req.once('response', resolve);
      req.once('error', reject);
    });
    const [sent, response] = await Promise.allSettled([sendThrough(body, verifier, req), answered]);
    if (sent.status === 'rejected' && (sent.reason instanceof BlockHashMismatchError || sent.reason instanceof BlockSizeMismatchError))
      throw sent.reason;
    if (response.status === 'rejected') throw new BlockStoreError(`could not store block ${sha256}`, { cause: response.reason });
    const res = response.value;
    if (res.statusCode !== 200) {
      const error = await parseS3Error(res.statusCode ?? 0, await readText(res));
      if (error.code !== undefined && checksumMismatchCodes.has(error.code)) throw new BlockHashMismatchError(sha256, 'unknown', size);
      if (error.status === 403 && error.code !== undefined && credentialErrorCodes.has(error.code)) await this.#credentials.refresh();
      throw new BlockStoreError(`storing block ${sha256} answered ${describeS3Error(error)}`, { s3: error });
    }
    res.resume();
    if (sent.status === 'rejected') throw new BlockStoreError(`could not send block ${sha256}`, { cause: sent.reason });
    this.#remember(sha256, size);
  }

  /**
   * Block `sha256` as the store sends it, unverified (the caller verifies it while it forwards
   * the bytes, see partition/content-stream.ts, which saves a stream stage per chunk), and
   * whether the store vouches for it: with `readCheck`
   * `store`, S3 is asked for the sha256 checksum it kept since the write (`x-amz-checksum-mode`),
   * and when that names the block the reader need not hash it (ADR 77). A block written without
   * one, or by a store that keeps none, or another object under the block's key, is not vouched
   * for: the reader hashes it.
   */
  async read(sha256: string): Promise<BlockBody> {
    const asked = this.#readCheck === 'store';
    const { res, error } = await this.#send('GetObject', 'GET', blockKey(sha256), asked ? checksumModeHeaders : {});
    if (error === undefined) {
      const kept = res.headers['x-amz-checksum-sha256'];
      const storeChecked = asked && kept === checksumOf(sha256);
      this.#onRead?.(storeChecked);
      return { body: res, storeChecked };
    }
    if (res.statusCode === 404) throw new BlockStoreError(`block ${sha256} is missing from the store`, { s3: error });
    throw new BlockStoreError(`reading block ${sha256} answered ${describeS3Error(error)}`, { s3: error });
  }

  /**
   * A URL at which anyone may GET block `sha256` for `expiresInSeconds`, signed for `publicEndpoint`
   * (the address clients reach the store at, which may differ from the one the partition uses)
   * with the store's addressing style. No request is made: S3 checks the signature when the URL is
   * used, and answers 403 once it expired. With `checksumMode`, the URL is signed for the header
   * `x-amz-checksum-mode: ENABLED` as well: it must then be used with that header, and S3 answers
   * with the sha256 checksum it kept since the write (`x-amz-checksum-sha256`, ADR 78).
   */
  async presignedGet(
    sha256: string,
    publicEndpoint: URL,
    expiresInSeconds: number,
    options: { checksumMode?: boolean; date?: Date } = {},
  ): Promise<string> {
    const { hostname, host, path, base } = this.#publicTarget(sha256, publicEndpoint);
    const headers = options.checksumMode === true ? checksumModeHeaders : {};
    const query = await this.#signer.presign({ method: 'GET', hostname, host, path, headers }, expiresInSeconds, options.date);
    return `${base}?${query.toString()}`;
  }

  /** Where block `sha256` is at `publicEndpoint`, in the store's addressing style: what a presigned URL signs, and the URL without its query. */
  #publicTarget(sha256: string, publicEndpoint: URL): { hostname: string; host: string; path: string; base: string } {
    const key = blockKey(sha256);
    const hostname = this.#virtualHosted ? `${this.#bucket}.${publicEndpoint.hostname}` : publicEndpoint.hostname;
    const path = this.#virtualHosted ? `/${key}` : `/${this.#bucket}/${key}`;
    const host = publicEndpoint.port === '' ? hostname : `${hostname}:${publicEndpoint.port}`;
    return { hostname, host, path, base: `${publicEndpoint.protocol}//${host}${path}` };
  }

  /**
   * A URL at which whoever holds it may PUT block `sha256` for `expiresInSeconds` (ADR 80), signed
   * for `publicEndpoint` like presignedGet's, and the headers the PUT must send besides its
   * `Content-Length` (which is signed too, as `size`): the block's sha256 as the checksum the store
   * checks the body against and keeps (a body that does not hash to the name is refused and
   * nothing is stored), and `tag` as the object's metadata (`uploadTagHeader`), which says whom the
   * URL was given to (describe reads it back).
   */
  async presignedPut(
    sha256: string,
    size: number,
    tag: string,
    publicEndpoint: URL,
    expiresInSeconds: number,
    date = new Date(),
  ): Promise<{ url: string; headers: Record<string, string> }> {
    const { hostname, host, path, base } = this.#publicTarget(sha256, publicEndpoint);
    const headers = { 'x-amz-checksum-sha256': checksumOf(sha256), [uploadTagHeader]: tag };
    const query = await this.#signer.presign(
      { method: 'PUT', hostname, host, path, headers: { ...headers, 'content-length': String(size) } },
      expiresInSeconds,
      date,
    );
    return { url: `${base}?${query.toString()}`, headers };
  }

  /**
   * What the store holds under block `sha256` (a HEAD asking for the kept checksum), or undefined
   * when it holds nothing: its size, whether the sha256 checksum the store kept since the write
   * names the block (`storeChecked`), and the upload tag of the PUT that wrote it (presignedPut;
   * none for a block the partition wrote itself).
   */
  async describe(sha256: string): Promise<{ size: number; storeChecked: boolean; uploadTag: string | undefined } | undefined> {
    const { res, error } = await this.#send('HeadObject', 'HEAD', blockKey(sha256), checksumModeHeaders);
    res.resume();
    if (res.statusCode === 404) return undefined;
    if (error !== undefined) throw new BlockStoreError(`looking up block ${sha256} answered ${describeS3Error(error)}`, { s3: error });
    const size = Number(res.headers['content-length']);
    if (!Number.isSafeInteger(size)) throw new BlockStoreError(`looking up block ${sha256} answered without a Content-Length`);
    const tag = res.headers[uploadTagHeader];
    return {
      size,
      storeChecked: res.headers['x-amz-checksum-sha256'] === checksumOf(sha256),
      uploadTag: typeof tag === 'string' ? tag : undefined,
    };
  }

  /** Deletes block `sha256` from the bucket; deleting an absent block succeeds (S3 answers 204 either way). */
  async delete(sha256: string): Promise<void> {
    const { res, error } = await this.#send('DeleteObject', 'DELETE', blockKey(sha256));
    res.resume();
    if (error !== undefined && res.statusCode !== 404)
      throw new BlockStoreError(`deleting block ${sha256} answered ${describeS3Error(error)}`, { s3: error });
  }

  /** Host name and path of the bucket (no key) or of an object, by the addressing style. */
  #target(key: string | undefined): { hostname: string; path: string } {
    if (this.#virtualHosted) return { hostname: `${this.#bucket}.${this.#endpoint.hostname}`, path: key === undefined ? '/' : `/${key}` };
    return { hostname: this.#endpoint.hostname, path: key === undefined ? `/${this.#bucket}` : `/${this.#bucket}/${key}` };
  }

  /** A signed request; the caller sends the body. Trace headers are not signed: a hop may add its own. */
  async #request(
    method: string,
    key: string | undefined,
    payloadSha256: string,
    headers: Record<string, string>,
    traceHeaders: Record<string, string>,
  ): Promise<ClientRequest> {
    const { hostname, path } = this.#target(key);
    const host = this.#endpoint.port === '' ? hostname : `${hostname}:${this.#port}`;
    const signed = await this.#signer.sign({
      method,
      hostname,
      path,
      headers: { ...headers, host, 'x-amz-content-sha256': payloadSha256 },
    });
    return (this.#useSSL ? httpsRequest : httpRequest)({
      host: hostname,
      port: this.#port,
      method,
      path,
      agent: this.#agent,
      lookup: this.#lookup,
      headers: { ...signed, ...traceHeaders },
    });
  }

  /**
   * Sends a bodiless (idempotent) request and resolves with the answer once its headers arrived,
   * repeating it on the answers `isRetryableS3Answer` names and once after re-read credentials.
   * A failure's body is read into `error`; a success's body is left to the caller.
   */
  async #send(
    operation: string,
    method: 'GET' | 'HEAD' | 'DELETE',
    key: string | undefined,
    headers: Record<string, string> = {},
  ): Promise<Answer> {
    let reloadedCredentials = false;
    for (let attempt = 1; ; attempt++) {
      // The credentials may rotate while the request is out; a refusal of older ones is worth a retry.
      const generation = this.#credentials.generation;
      let res: IncomingMessage;
      try {
        res = await this.#call(operation, (traceHeaders) => this.#exchange(method, key, headers, traceHeaders), isServerError);
      } catch (err) {
        if (attempt < this.#retry.attempts && isRetryableNetworkError(err)) {
          await sleep(s3RetryDelayMs(this.#retry, attempt, Math.random()));
          continue;
        }
        throw new BlockStoreError(`S3 ${method} ${this.#target(key).path} failed: ${(err as Error).message}`, { cause: err });
      }
      const status = res.statusCode ?? 0;
      if (status >= 200 && status < 300) return { res, error: undefined };
      const error = await parseS3Error(status, await readText(res));
      // A HEAD answer has no body, so a 403 to it carries no code: it may be the credentials too.
      const refusedCredentials = status === 403 && (error.code === undefined || credentialErrorCodes.has(error.code));
      if (refusedCredentials && !reloadedCredentials) {
        reloadedCredentials = true;
        await this.#credentials.refresh();
        if (this.#credentials.generation !== generation) continue;
      }
      if (attempt < this.#retry.attempts && isRetryableS3Answer(status, error.code)) {
        const retryAfter = res.headers['retry-after'];
        await sleep(s3RetryDelayMs(this.#retry, attempt, Math.random(), typeof retryAfter === 'string' ? retryAfter : undefined));
        continue;
      }
      return { res, error };
    }
  }

  async #exchange(
    method: 'GET' | 'HEAD' | 'DELETE',
    key: string | undefined,
    headers: Record<string, string>,
    traceHeaders: Record<string, string>,
  ): Promise<IncomingMessage> {
    const req = await this.#request(method, key, emptyPayloadSha256, headers, traceHeaders);
    return new Promise<IncomingMessage>((resolve, reject) => {
      req.setTimeout(headerTimeoutMs, () => req.destroy(new Error(`no answer within ${headerTimeoutMs} ms`)));
      req.once('response', (res) => {
        req.setTimeout(0);
        resolve(res);
      });
      req.once('error', reject);
      req.end();
    });
  }

  #remember(sha256: string, size: number): void {
    if (this.#known.size >= knownBlockLimit) this.#known.clear();
    this.#known.set(sha256, size);
  }
}

/** The start of an error body (S3's XML fits); the rest is drained so the socket can be reused. */
async function readText(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of res) {
    if (bytes < errorBodyLimit) chunks.push(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return Buffer.concat(chunks).subarray(0, errorBodyLimit).toString('utf8');
}

/**
 * `body` through `verifier` into `req`, settling as `pipeline` does (the first error destroys all
 * three; success once `req` finished) without `pipeline`'s AbortController, whose abort at the
 * end of every call builds a DOMException: a measurable share of a small upload's CPU.
 */
function sendThrough(body: Readable, verifier: Transform, req: Writable): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      for (const stream of [body, verifier, req]) stream.destroy(err);
      reject(err);
    };
    finished(body, { writable: false }, (err) => err && fail(err));
    finished(verifier, (err) => err && fail(err));
    finished(req, { readable: false }, (err) => {
      if (err) fail(err);
      else if (!settled) {
        settled = true;
        resolve();
      }
    });
    body.pipe(verifier).pipe(req);
  });
}
