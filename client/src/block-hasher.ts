// The sha256 of whole blocks, computed on a worker thread so that the thread reading the sockets
// never hashes (ADR 73). The memory holding the block is moved to the worker and back
// (transferred, not copied), so that the caller can use it again for the next block: WebCrypto's
// digest also runs off the thread, but copies its input into fresh memory first, and fresh
// memory for every block costs the reading thread more (page faults, collection) than hashing
// it there.
// One worker serves the process, made on first use and left to exit with it: it holds the
// process open only while a hash is under way. Node-only (`./node` entry point).
import { Worker } from 'node:worker_threads';

// Plain JavaScript evaluated in the worker, so there is no file to resolve wherever the client
// is installed or bundled. It runs as CommonJS or as a module (a worker inherits
// `--input-type=module`), so it takes Node's modules without `require` or `import`.
const workerSource = `
const { parentPort } = process.getBuiltinModule('node:worker_threads');
const { createHash } = process.getBuiltinModule('node:crypto');
parentPort.on('message', ({ id, memory, length }) => {
  const digest = createHash('sha256').update(new Uint8Array(memory, 0, length)).digest('hex');
  parentPort.postMessage({ id, digest, memory }, [memory]);
});
`;

interface Waiting {
  resolve: (answer: { digest: string; memory: ArrayBuffer }) => void;
  reject: (err: Error) => void;
}

let worker: Worker | undefined;
let nextId = 0;
const waiting = new Map<number, Waiting>();

function hasher(): Worker {
  if (worker !== undefined) return worker;
  const made = new Worker(workerSource, { eval: true, name: 'meshwork block hasher' });
  const fail = (err: Error): void => {
    if (worker === made) worker = undefined;
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
  };
  made.on('message', ({ id, digest, memory }: { id: number; digest: string; memory: ArrayBuffer }) => {
    const w = waiting.get(id);
    waiting.delete(id);
    if (waiting.size === 0) made.unref();
    w?.resolve({ digest, memory });
  });
  made.on('error', fail);
  made.on('exit', (code) => fail(new Error(`the block hasher exited with code ${code}`)));
  // Idle, it does not hold the process open; sha256OffThread holds it while a hash is under way.
  // (After the listeners: adding a 'message' listener holds a worker again.)
  made.unref();
  worker = made;
  return made;
}

/**
 * Starts the hashing thread if it is not running, so that its start (tens of milliseconds, more
 * on a busy machine) overlaps the first block's request rather than following it.
 */
export function startHasher(): void {
  hasher();
}

/**
 * The lower-case hex sha256 of the first `length` bytes of `memory`, computed on a worker thread.
 * `memory` is moved there and back: it is detached (empty) meanwhile, and the answer's `memory`
 * is the same memory again, for the next block.
 */
export function sha256OffThread(memory: ArrayBuffer, length: number): Promise<{ digest: string; memory: ArrayBuffer }> {
  if (!Number.isSafeInteger(length) || length < 0 || length > memory.byteLength) {
    return Promise.reject(new RangeError(`length must be 0 to ${memory.byteLength}, not ${length}`));
  }
  const thread = hasher();
  const id = nextId++;
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve, reject });
    thread.ref();
    thread.postMessage({ id, memory, length }, [memory]);
  });
}

/**
 * Memory for blocks on their way to the hashing thread, used again once it comes back: at most
 * `keep` spare buffers are kept, and a spare serves any block it can hold.
 */
export class HashBuffers {
  readonly #spare: ArrayBuffer[] = [];
  readonly #keep: number;

  constructor(keep = 2) {
    this.#keep = keep;
  }

  /** Memory for `size` bytes: a spare one when one is large enough, else new. */
  take(size: number): ArrayBuffer {
    const i = this.#spare.findIndex((b) => b.byteLength >= size);
    if (i >= 0) return this.#spare.splice(i, 1)[0]!;
    return new ArrayBuffer(size);
  }

  /** Hands memory back for a later block. */
  give(memory: ArrayBuffer): void {
    if (this.#spare.length < this.#keep && memory.byteLength > 0) this.#spare.push(memory);
  }
}
