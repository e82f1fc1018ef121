// A pass-through stream that checks the bytes against an expected sha256 and length. It holds
// back the last chunk until the whole body is hashed, so a downstream store never receives a
// complete body that does not match: on a mismatch the stream errors before its final chunk.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { MeshworkError, processGcPacer } from '@meshwork/contract';

/** Raised when content does not hash to the sha256 it was addressed by. */
export class BlockHashMismatchError extends MeshworkError {
  readonly expected: string;
  readonly actual: string;

  constructor(expected: string, actual: string, bytes: number) {
    super('hash_mismatch', `content of ${bytes} bytes hashes to ${actual}, not ${expected}`);
    this.expected = expected;
    this.actual = actual;
  }
}

/** Raised when content is shorter or longer than announced. */
export class BlockSizeMismatchError extends MeshworkError {
  constructor(message: string) {
    super('size_mismatch', message);
  }
}

/** Verifies a stream's sha256 (and, if given, its length) while passing it on. */
export class HashVerifier extends Transform {
  readonly #expected: string;
  readonly #expectedBytes: number | undefined;
  readonly #hash: Hash = createHash('sha256');
  #held: Buffer | undefined;
  #bytes = 0;
  readonly #onVerified: (() => void) | undefined;

  /** `onVerified` is called once the whole body hashed to `expectedSha256`, before its last chunk is passed on. */
  constructor(expectedSha256: string, expectedBytes?: number, onVerified?: () => void) {
    super();
    this.#expected = expectedSha256;
    this.#expectedBytes = expectedBytes;
    this.#onVerified = onVerified;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    processGcPacer.streamed(chunk.length);
    this.#hash.update(chunk);
    this.#bytes += chunk.length;
    if (this.#expectedBytes !== undefined && this.#bytes > this.#expectedBytes) {
      callback(new BlockSizeMismatchError(`content is longer than the announced ${this.#expectedBytes} bytes`));
      return;
    }
    const previous = this.#held;
    this.#held = chunk;
    callback(null, previous);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#expectedBytes !== undefined && this.#bytes !== this.#expectedBytes) {
      callback(new BlockSizeMismatchError(`content is ${this.#bytes} bytes, not the announced ${this.#expectedBytes}`));
      return;
    }
    const actual = this.#hash.digest('hex');
    if (actual !== this.#expected) {
      callback(new BlockHashMismatchError(this.#expected, actual, this.#bytes));
      return;
    }
    this.#onVerified?.();
    callback(null, this.#held);
  }
}
