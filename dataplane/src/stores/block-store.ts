// Content blocks in S3 (MinIO in tests), addressed by sha256 under `blocks/{sha256}`. Writes
// and reads stream through a hash check; the store never holds a block whose bytes do not
// match its name. Requests are plain HTTP signed with SigV4 (s3-signing.ts): the partition
// needs four S3 operations, and a full S3 client costs memory and a key derivation per request.
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BlockHashMismatchError, BlockSizeMismatchError, HashVerifier } from './hash-verifier.ts';
import { amzDate, emptyPayloadSha256, S3Signer } from './s3-signing.ts';

/** Where the block store lives and how to sign requests to it. */
export interface BlockStoreOptions {
  endpoint: URL;
  bucket: string;
  region: string;
  accessKey: string;
  secretKey: string;
}

/**
 * Runs one S3 exchange (`operation`: HeadBucket, HeadObject, GetObject, PutObject); telemetry
 * uses it to time and trace the call, and hands `run` the trace headers to send. `failed` tells
 * an answer that is a failure (a 5xx) from one that is not.
 */
export type S3CallHook = <T>(operation: string, run: (traceHeaders: Record<string, string>) => Promise<T>, failed?: (result: T) => boolean) => Promise<T>;

const untracedCall: S3CallHook = (_operation, run) => run({});

function isServerError(res: IncomingMessage): boolean {
  return (res.statusCode ?? 0) >= 500;
}

/** Raised when the S3 endpoint fails or answers unexpectedly. */
export class BlockStoreError extends Error {
  override readonly name = 'BlockStoreError';
}

/** The key of a block in the bucket. */
export function blockKey(sha256: string): string {
  return `blocks/${sha256}`;
}

// Blocks are immutable and never deleted while referenced, so a block seen once stays present;
// remembering sizes saves a HEAD per block on commit and on `missing`.
const knownBlockLimit = 200_000;
// A HEAD or the headers of a GET must come back within this; bodies stream without a deadline.
const headerTimeoutMs = 30_000;

/** Content-addressed block storage on S3. */
export class BlockStore {
  readonly #bucket: string;
  readonly #endpoint: URL;
  readonly #useSSL: boolean;
  readonly #port: number;
  readonly #hostHeader: string;
  readonly #agent: Agent | HttpsAgent;
  readonly #signer: S3Signer;
  readonly #known = new Map<string, number>();
  readonly #call: S3CallHook;

  constructor(options: BlockStoreOptions, call: S3CallHook = untracedCall) {
    this.#call = call;
    this.#useSSL = options.endpoint.protocol === 'https:';
    this.#port = options.endpoint.port === '' ? (this.#useSSL ? 443 : 80) : Number(options.endpoint.port);
    // Keep-alive sockets: a small-file workload makes one S3 request per block.
    this.#agent = this.#useSSL ? new HttpsAgent({ keepAlive: true, maxSockets: 64 }) : new Agent({ keepAlive: true, maxSockets: 64 });
    this.#bucket = options.bucket;
    this.#endpoint = options.endpoint;
    this.#hostHeader = options.endpoint.port === '' ? options.endpoint.hostname : `${options.endpoint.hostname}:${this.#port}`;
    this.#signer = new S3Signer({ accessKey: options.accessKey, secretKey: options.secretKey, region: options.region });
  }

  /** Checks that the bucket answers; for readiness and start-up. */
  async ping(): Promise<void> {
    const res = await this.#send('HeadBucket', 'HEAD', `/${this.#bucket}`);
    res.resume();
    if (res.statusCode === 404) throw new BlockStoreError(`bucket ${this.#bucket} does not exist`);
    if (res.statusCode !== 200) throw new BlockStoreError(`bucket ${this.#bucket} answered ${res.statusCode}`);
  }

  /** The size of a stored block, or undefined when the store lacks it. */
  async sizeOf(sha256: string): Promise<number | undefined> {
    const known = this.#known.get(sha256);
    if (known !== undefined) return known;
    const res = await this.#send('HeadObject', 'HEAD', `/${this.#bucket}/${blockKey(sha256)}`);
    res.resume();
    if (res.statusCode === 404) return undefined;
    const size = Number(res.headers['content-length']);
    if (res.statusCode !== 200 || !Number.isSafeInteger(size)) throw new BlockStoreError(`looking up block ${sha256} answered ${res.statusCode}`);
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
   * also told the expected sha256 (x-amz-content-sha256), so neither a mismatch nor a truncated
   * body ever becomes visible under the block's key.
   */
  async put(sha256: string, size: number, body: Readable): Promise<void> {
    await this.#call('PutObject', (traceHeaders) => this.#put(sha256, size, body, traceHeaders));
  }

  async #put(sha256: string, size: number, body: Readable, traceHeaders: Record<string, string>): Promise<void> {
    const verifier = new HashVerifier(sha256, size);
    const req = this.#request('PUT', `/${this.#bucket}/${blockKey(sha256)}`, sha256, { 'content-length': String(size), ...traceHeaders });
    const answered = new Promise<IncomingMessage>((resolve, reject) => {
      req.once('response', resolve);
      req.once('error', reject);
    });
    const [sent, response] = await Promise.allSettled([pipeline(body, verifier, req), answered]);
    if (sent.status === 'rejected' && (sent.reason instanceof BlockHashMismatchError || sent.reason instanceof BlockSizeMismatchError)) throw sent.reason;
    if (response.status === 'rejected') throw new BlockStoreError(`could not store block ${sha256}`, { cause: response.reason });
    const res = response.value;
    if (res.statusCode !== 200) {
      const text = await readText(res);
      if (text.includes('XAmzContentSHA256Mismatch')) throw new BlockHashMismatchError(sha256, 'unknown', size);
      throw new BlockStoreError(`storing block ${sha256} answered ${res.statusCode}: ${errorCode(text)}`);
    }
    res.resume();
    if (sent.status === 'rejected') throw new BlockStoreError(`could not send block ${sha256}`, { cause: sent.reason });
    this.#remember(sha256, size);
  }

  /**
   * The raw S3 stream of block `sha256`. The caller verifies the hash while it forwards the
   * bytes (see partition/content-stream.ts), which saves a stream stage per chunk.
   */
  async getUnverified(sha256: string): Promise<Readable> {
    const res = await this.#send('GetObject', 'GET', `/${this.#bucket}/${blockKey(sha256)}`);
    if (res.statusCode === 200) return res;
    const text = await readText(res);
    if (res.statusCode === 404) throw new BlockStoreError(`block ${sha256} is missing from the store`);
    throw new BlockStoreError(`reading block ${sha256} answered ${res.statusCode}: ${errorCode(text)}`);
  }

  /** A signed request; the caller sends the body. Extra headers (trace context) are not signed. */
  #request(method: string, path: string, payloadSha256: string, extra: Record<string, string> = {}): ReturnType<typeof httpRequest> {
    const date = new Date();
    const signed = { host: this.#hostHeader, 'x-amz-content-sha256': payloadSha256, 'x-amz-date': amzDate(date) };
    return (this.#useSSL ? httpsRequest : httpRequest)({
      host: this.#endpoint.hostname,
      port: this.#port,
      method,
      path,
      agent: this.#agent,
      headers: { ...signed, ...extra, authorization: this.#signer.authorization({ method, path, query: '', headers: signed }, date) },
    });
  }

  /** Sends a bodiless request and resolves with the response once its headers arrived. */
  async #send(operation: string, method: 'GET' | 'HEAD', path: string): Promise<IncomingMessage> {
    try {
      return await this.#call(operation, (traceHeaders) => this.#exchange(method, path, traceHeaders), isServerError);
    } catch (err) {
      throw new BlockStoreError(`S3 ${method} ${path} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  #exchange(method: 'GET' | 'HEAD', path: string, traceHeaders: Record<string, string>): Promise<IncomingMessage> {
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = this.#request(method, path, emptyPayloadSha256, traceHeaders);
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

async function readText(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').slice(0, 4096);
}

function errorCode(xml: string): string {
  return /<Code>([^<]*)<\/Code>/.exec(xml)?.[1] ?? (xml.slice(0, 200) || 'no details');
}
