// Content blocks in S3 (MinIO in tests), addressed by sha256 under `blocks/{sha256}`. Writes
// and reads stream through a hash check; the store never holds a block whose bytes do not
// match its name.
import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client, S3Error } from 'minio';
import { BlockHashMismatchError, HashVerifier } from './hash-verifier.ts';

/** Where the block store lives and how to sign requests to it. */
export interface BlockStoreOptions {
  endpoint: URL;
  bucket: string;
  region: string;
  accessKey: string;
  secretKey: string;
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

/** Content-addressed block storage on S3. */
export class BlockStore {
  readonly #client: Client;
  readonly #bucket: string;
  readonly #region: string;
  readonly #known = new Map<string, number>();

  constructor(options: BlockStoreOptions) {
    const useSSL = options.endpoint.protocol === 'https:';
    const port = options.endpoint.port === '' ? (useSSL ? 443 : 80) : Number(options.endpoint.port);
    // Keep-alive sockets: a small-file workload makes one S3 request per block.
    const agent = useSSL ? new HttpsAgent({ keepAlive: true, maxSockets: 64 }) : new Agent({ keepAlive: true, maxSockets: 64 });
    this.#client = new Client({
      endPoint: options.endpoint.hostname,
      port,
      useSSL,
      accessKey: options.accessKey,
      secretKey: options.secretKey,
      region: options.region,
      pathStyle: true,
      transportAgent: agent,
      // A streamed body cannot be replayed, so a retry would send nothing; callers retry whole blocks.
      retryOptions: { disableRetry: true },
    });
    this.#bucket = options.bucket;
    this.#region = options.region;
  }

  /** Checks that the bucket answers; for readiness and start-up. */
  async ping(): Promise<void> {
    const exists = await this.#client.bucketExists(this.#bucket);
    if (!exists) throw new BlockStoreError(`bucket ${this.#bucket} does not exist`);
  }

  /** The size of a stored block, or undefined when the store lacks it. */
  async sizeOf(sha256: string): Promise<number | undefined> {
    const known = this.#known.get(sha256);
    if (known !== undefined) return known;
    try {
      const stat = await this.#client.statObject(this.#bucket, blockKey(sha256));
      this.#remember(sha256, stat.size);
      return stat.size;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new BlockStoreError(`could not look up block ${sha256}`, { cause: err });
    }
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
    const verifier = new HashVerifier(sha256, size);
    const upload = this.#client.makeRequestStreamAsync(
      { method: 'PUT', bucketName: this.#bucket, objectName: blockKey(sha256), headers: { 'content-length': String(size) } },
      verifier,
      sha256,
      [200],
      this.#region,
    );
    // If S3 gives up first, stop reading the client's body too.
    void upload.catch((err: unknown) => verifier.destroy(err instanceof Error ? err : new Error(String(err))));
    const feed = pipeline(body, verifier);
    const [fed, uploaded] = await Promise.allSettled([feed, upload]);
    if (fed.status === 'rejected') throw fed.reason;
    if (uploaded.status === 'rejected') {
      const err: unknown = uploaded.reason;
      if (err instanceof S3Error && err.code === 'XAmzContentSHA256Mismatch') throw new BlockHashMismatchError(sha256, 'unknown', size);
      throw new BlockStoreError(`could not store block ${sha256}`, { cause: err });
    }
    uploaded.value.resume();
    this.#remember(sha256, size);
  }

  /**
   * The raw S3 stream of block `sha256`. The caller verifies the hash while it forwards the
   * bytes (see partition/content-stream.ts), which saves a stream stage per chunk.
   */
  async getUnverified(sha256: string): Promise<Readable> {
    try {
      return await this.#client.getObject(this.#bucket, blockKey(sha256));
    } catch (err) {
      if (isNotFound(err)) throw new BlockStoreError(`block ${sha256} is missing from the store`, { cause: err });
      throw new BlockStoreError(`could not read block ${sha256}`, { cause: err });
    }
  }

  #remember(sha256: string, size: number): void {
    if (this.#known.size >= knownBlockLimit) this.#known.clear();
    this.#known.set(sha256, size);
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof S3Error && (err.code === 'NotFound' || err.code === 'NoSuchKey');
}
