// The hashes of a WebDAV upload (ADR 84): SHA1 and MD5 of the whole body for oc:checksums and
// the SHA-256 of each 4 MiB block that names it. Each is updated with every chunk of the body
// as the chunk arrives, on the event loop, so every byte is hashed once per algorithm while it
// is still in the processor's cache, a block's name is known the moment its last byte is in,
// and no chunk stalls the event loop for longer than hashing it takes (about 0.15 ms for the
// 64 KiB a socket read gives).
import { createHash, type Hash } from 'node:crypto';
import { maxBlockSize } from '@meshwork/client';

/** One upload's hashes, fed the body's chunks in order. */
export class UploadHashes {
  readonly #blockSize: number;
  readonly #sha1: Hash = createHash('sha1');
  readonly #md5: Hash = createHash('md5');
  #block: Hash = createHash('sha256');
  #blockBytes = 0;
  /** The names of whole blocks hashed and not yet asked for, oldest first. */
  readonly #whole: string[] = [];

  constructor(blockSize: number = maxBlockSize) {
    if (!Number.isInteger(blockSize) || blockSize < 1) throw new RangeError(`blockSize must be a positive integer, not ${blockSize}`);
    this.#blockSize = blockSize;
  }

  /** Hashes the body's next chunk; the blocks it completes get their names. */
  chunk(bytes: Uint8Array): void {
    this.#sha1.update(bytes);
    this.#md5.update(bytes);
    for (let offset = 0; offset < bytes.byteLength;) {
      const n = Math.min(this.#blockSize - this.#blockBytes, bytes.byteLength - offset);
      this.#block.update(n === bytes.byteLength ? bytes : bytes.subarray(offset, offset + n));
      offset += n;
      this.#blockBytes += n;
      if (this.#blockBytes === this.#blockSize) {
        this.#whole.push(this.#block.digest('hex'));
        this.#block = createHash('sha256');
        this.#blockBytes = 0;
      }
    }
  }

  /**
   * The SHA-256 of the body's next block, `size` bytes long: a whole block whose bytes have all
   * been through `chunk`, or the body's last, shorter one once the body ended. A size that does
   * not match what was hashed is a bug in the caller, and throws.
   */
  block(size: number): string {
    const whole = this.#whole.shift();
    if (whole !== undefined) {
      if (size !== this.#blockSize) throw new Error(`a block of ${size} bytes where a whole block of ${this.#blockSize} was hashed`);
      return whole;
    }
    if (size === 0 || size !== this.#blockBytes) throw new Error(`a block of ${size} bytes where ${this.#blockBytes} were hashed`);
    const sha256 = this.#block.digest('hex');
    this.#block = createHash('sha256');
    this.#blockBytes = 0;
    return sha256;
  }

  /** SHA1 and MD5 of every chunk hashed (of nothing, for an empty body); asked once, at the end. */
  digests(): { sha1: string; md5: string } {
    return { sha1: this.#sha1.digest('hex'), md5: this.#md5.digest('hex') };
  }
}
