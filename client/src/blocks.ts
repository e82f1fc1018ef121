// Content as the API stores it: blocks of at most 4 MiB addressed by the sha256 of their bytes.
// Splitting pulls from the source only as blocks are consumed, so an upload holds the blocks
// in flight and never the whole file. Hashing uses Node's own hash where the code runs in Node
// and WebCrypto elsewhere (ADR 76).

/** The largest block the API accepts (4 MiB). */
export const maxBlockSize = 4 * 1024 * 1024;

/** Where upload content comes from: bytes, a Blob (a browser File), a web stream, or any async iterable of bytes (a Node stream). */
export type UploadSource = Uint8Array | Blob | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/**
 * Node's `node:crypto`, when the code runs in Node (`process.getBuiltinModule`, which a browser
 * lacks, so the web UI's bundle imports nothing of Node's).
 */
const nodeCrypto = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.(
  'node:crypto',
) as NodeHashes | undefined;

/** What `sha256Hex` uses of `node:crypto`, so that the web UI compiles without Node's types. */
interface NodeHashes {
  createHash(algorithm: 'sha256'): { update(data: Uint8Array): { digest(encoding: 'hex'): string } };
}

/**
 * The lower-case hex sha256 of some bytes. In Node the bytes are hashed where they are, on the
 * calling thread: WebCrypto's `digest` first copies them outside V8's heap to hash them on a
 * worker thread, which for a 4 MiB block cost more CPU than the hash and left the copies to the
 * C allocator (ADR 76).
 */
export async function sha256Hex(data: Uint8Array): Promise<string> {
  if (nodeCrypto !== undefined) return nodeCrypto.createHash('sha256').update(data).digest('hex');
  return webSha256Hex(data);
}

/** `sha256Hex` by WebCrypto, as in a browser. */
export async function webSha256Hex(data: Uint8Array): Promise<string> {
  // The DOM's BufferSource excludes views of a SharedArrayBuffer (blocks are never in one); the
  // web UI compiles this file against the DOM's types, where Node's accept it as it is.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
  const digest = await crypto.subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The entry's content hash: sha256 over the ordered `sha256:size` lines of its blocks (docs/api.md). */
export async function contentHashOf(blocks: readonly { sha256: string; size: number }[]): Promise<string> {
  return sha256Hex(new TextEncoder().encode(blocks.map((b) => `${b.sha256}:${b.size}\n`).join('')));
}

async function* chunksOf(source: UploadSource): AsyncGenerator<Uint8Array> {
  if (source instanceof Uint8Array) {
    yield source;
  } else if (typeof Blob !== 'undefined' && source instanceof Blob) {
    yield* chunksOf(source.stream());
  } else if (typeof ReadableStream !== 'undefined' && source instanceof ReadableStream) {
    // A reader rather than `for await`, which not every browser offers on web streams.
    const reader = (source as ReadableStream<Uint8Array>).getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        yield value;
      }
    } finally {
      reader.releaseLock();
    }
  } else {
    yield* source as AsyncIterable<Uint8Array>;
  }
}

/**
 * Splits a source into blocks of exactly `blockSize` bytes (the last may be shorter; an empty
 * source yields none). A `Uint8Array` source is cut without copying, and so is a chunk that
 * holds whole blocks, or a last chunk shorter than a block (a small file read in one chunk is
 * never copied into a block-sized buffer); the rest of a stream's chunks are copied into each
 * block as they arrive, in a new buffer of `blockSize` bytes or one `take` gives (which must be
 * exactly that long: a caller's pool of buffers used again).
 */
export async function* splitBlocks(
  source: UploadSource,
  blockSize = maxBlockSize,
  take: () => Uint8Array = () => new Uint8Array(blockSize),
): AsyncGenerator<Uint8Array> {
  if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > maxBlockSize) {
    throw new RangeError(`blockSize must be 1 to ${maxBlockSize}, not ${blockSize}`);
  }
  if (source instanceof Uint8Array) {
    for (let offset = 0; offset < source.length; offset += blockSize) yield source.subarray(offset, offset + blockSize);
    return;
  }
  let block: Uint8Array | undefined;
  let filled = 0;
  // The start of a block held as the source gave it, until the next chunk says whether it must be copied.
  let pending: Uint8Array | undefined;
  for await (const chunk of chunksOf(source)) {
    if (chunk.length === 0) continue;
    if (pending !== undefined) {
      block = take();
      if (block.byteLength !== blockSize) throw new RangeError(`take gave ${block.byteLength} bytes, not ${blockSize}`);
      block.set(pending);
      filled = pending.length;
      pending = undefined;
    }
    for (let offset = 0; offset < chunk.length;) {
      if (filled === 0) {
        if (chunk.length - offset >= blockSize) {
          // A whole block inside a chunk is handed on without a copy.
          yield chunk.subarray(offset, offset + blockSize);
          offset += blockSize;
          continue;
        }
        // What is left is shorter than a block: held, not copied, in case nothing follows.
        pending = chunk.subarray(offset);
        break;
      }
      const n = Math.min(blockSize - filled, chunk.length - offset);
      block!.set(chunk.subarray(offset, offset + n), filled);
      filled += n;
      offset += n;
      if (filled === blockSize) {
        yield block!;
        block = undefined;
        filled = 0;
      }
    }
  }
  if (pending !== undefined) yield pending;
  else if (filled > 0) yield block!.subarray(0, filled);
}
