// Content as the API stores it: blocks of at most 4 MiB addressed by the sha256 of their bytes.
// Splitting pulls from the source only as blocks are consumed, so an upload holds the blocks
// in flight and never the whole file. Hashing uses WebCrypto, present in Node and browsers.

/** The largest block the API accepts (4 MiB). */
export const maxBlockSize = 4 * 1024 * 1024;

/** Where upload content comes from: bytes, a Blob (a browser File), a web stream, or any async iterable of bytes (a Node stream). */
export type UploadSource = Uint8Array | Blob | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** The lower-case hex sha256 of some bytes. */
export async function sha256Hex(data: Uint8Array): Promise<string> {
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
 * holds whole blocks; the rest of a stream's chunks are copied into each block as they arrive.
 */
export async function* splitBlocks(source: UploadSource, blockSize = maxBlockSize): AsyncGenerator<Uint8Array> {
  if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > maxBlockSize) {
    throw new RangeError(`blockSize must be 1 to ${maxBlockSize}, not ${blockSize}`);
  }
  if (source instanceof Uint8Array) {
    for (let offset = 0; offset < source.length; offset += blockSize) yield source.subarray(offset, offset + blockSize);
    return;
  }
  let block = new Uint8Array(blockSize);
  let filled = 0;
  for await (const chunk of chunksOf(source)) {
    let offset = 0;
    // Whole blocks inside a chunk are handed on without a copy.
    while (filled === 0 && chunk.length - offset >= blockSize) {
      yield chunk.subarray(offset, offset + blockSize);
      offset += blockSize;
    }
    while (offset < chunk.length) {
      const n = Math.min(blockSize - filled, chunk.length - offset);
      block.set(chunk.subarray(offset, offset + n), filled);
      filled += n;
      offset += n;
      if (filled === blockSize) {
        yield block;
        block = new Uint8Array(blockSize);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield block.subarray(0, filled);
}
