// The hashes of a WebDAV upload (ADR 47): SHA1 and MD5 of the whole body for oc:checksums and
// the SHA-256 of each block that names it, each computed once per byte. A body of one small
// block is hashed on the event loop (a thread hop would cost more than the hashing); larger
// blocks are hashed on one worker thread shared by all uploads, in order per upload, while the
// event loop goes on receiving and sending.
import { createHash, type Hash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { HashAnswer, HashRequest } from './hash-worker.ts';

/** Blocks up to this size are hashed on the event loop. */
export const inlineHashBytes = 256 * 1024;

type Pending = { resolve(value: { sha256: string; data: Uint8Array }): void; reject(err: Error): void; length: number; offset: number };

/** The worker, started on first use, and the uploads waiting on it. */
export class HashWorker {
  #worker: Worker | undefined;
  #next = 0;
  readonly #blocks = new Map<string, Pending>();
  readonly #ends = new Map<number, { resolve(value: { sha1: string; md5: string }): void; reject(err: Error): void }>();

  #started(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const worker = new Worker(new URL('./hash-worker.ts', import.meta.url));
    worker.unref();
    worker.on('message', (answer: HashAnswer) => {
      if (answer.kind === 'block') {
        const key = `${answer.upload}/${answer.seq}`;
        const pending = this.#blocks.get(key);
        this.#blocks.delete(key);
        pending?.resolve({ sha256: answer.sha256, data: new Uint8Array(answer.buffer, pending.offset, pending.length) });
      } else {
        const pending = this.#ends.get(answer.upload);
        this.#ends.delete(answer.upload);
        pending?.resolve({ sha1: answer.sha1, md5: answer.md5 });
      }
    });
    const fail = (err: Error): void => {
      this.#worker = undefined;
      for (const p of this.#blocks.values()) p.reject(err);
      for (const p of this.#ends.values()) p.reject(err);
      this.#blocks.clear();
      this.#ends.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the hashing worker exited with ${code}`)));
    this.#worker = worker;
    return worker;
  }

  /** A new upload's id. */
  upload(): number {
    return this.#next++;
  }

  /** Hashes one block of an upload; the answer holds the block's bytes again (they travelled to the worker and back). */
  block(upload: number, seq: number, block: Uint8Array): Promise<{ sha256: string; data: Uint8Array }> {
    const worker = this.#started();
    // A block that is the whole of its buffer travels as it is; any other is copied out first
    // (a view's buffer may hold bytes that are not this block's).
    // (`new Uint8Array(view)` copies; a Buffer's `slice` would not).
    const own = block.byteOffset === 0 && block.byteLength === block.buffer.byteLength ? block : new Uint8Array(block);
    return new Promise((resolve, reject) => {
      this.#blocks.set(`${upload}/${seq}`, { resolve, reject, offset: 0, length: own.byteLength });
      const message: HashRequest = { kind: 'block', upload, seq, buffer: own.buffer as ArrayBuffer, offset: 0, length: own.byteLength };
      worker.postMessage(message, [own.buffer as ArrayBuffer]);
    });
  }

  /** The upload's SHA1 and MD5 over every block given. */
  end(upload: number): Promise<{ sha1: string; md5: string }> {
    const worker = this.#started();
    return new Promise((resolve, reject) => {
      this.#ends.set(upload, { resolve, reject });
      worker.postMessage({ kind: 'end', upload } satisfies HashRequest);
    });
  }

  /** Forgets an upload that broke off. */
  drop(upload: number): void {
    this.#worker?.postMessage({ kind: 'drop', upload } satisfies HashRequest);
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    await worker?.terminate();
  }
}

/**
 * One upload's hashing: blocks in the order the body gave them. The first block is held back
 * until the second arrives or the body ends: a body of one small block is hashed on the event
 * loop, anything else on the worker.
 */
export class UploadHashes {
  readonly #worker: HashWorker;
  #upload: number | undefined;
  #seq = 0;
  #inline: { sha1: Hash; md5: Hash } | undefined;

  constructor(worker: HashWorker) {
    this.#worker = worker;
  }

  /** Hashes the upload's next block; `only` says it is the body's one block. */
  block(block: Uint8Array, only: boolean): Promise<{ sha256: string; data: Uint8Array }> {
    if (only && this.#seq === 0 && block.byteLength <= inlineHashBytes) {
      this.#seq++;
      this.#inline = { sha1: createHash('sha1').update(block), md5: createHash('md5').update(block) };
      return Promise.resolve({ sha256: createHash('sha256').update(block).digest('hex'), data: block });
    }
    this.#upload ??= this.#worker.upload();
    return this.#worker.block(this.#upload, this.#seq++, block);
  }

  /** SHA1 and MD5 of everything hashed (of nothing, for an empty body). */
  async digests(): Promise<{ sha1: string; md5: string }> {
    if (this.#upload !== undefined) {
      const upload = this.#upload;
      this.#upload = undefined;
      return this.#worker.end(upload);
    }
    const inline = this.#inline ?? { sha1: createHash('sha1'), md5: createHash('md5') };
    return { sha1: inline.sha1.digest('hex'), md5: inline.md5.digest('hex') };
  }

  /** Lets the worker forget an upload that will not finish. */
  drop(): void {
    if (this.#upload !== undefined) this.#worker.drop(this.#upload);
    this.#upload = undefined;
  }
}
