// Content-addressed blocks as the service sees them: which of a list the store lacks, the
// declared size an upload must have (a block is at most 4 MiB, and its length is known up
// front so it streams to S3 without buffering), and storing one with its hash verified.
import type { Readable } from 'node:stream';
import { ApiError } from '@meshwork/contract';
import type { BlockStore } from '../../stores/block-store.ts';
import { BlockHashMismatchError, BlockSizeMismatchError } from '../../stores/hash-verifier.ts';
import { invalidRequest } from '../errors.ts';
import { maxBlockBytes } from '../schemas.ts';

/** Which of `shas` the store lacks, each once, in the order asked. */
export async function missingBlocks(blocks: Pick<BlockStore, 'sizesOf'>, shas: readonly string[]): Promise<string[]> {
  const sizes = await blocks.sizesOf(shas);
  return [...new Set(shas)].filter((sha) => sizes.get(sha) === undefined);
}

/** The size of a block upload from its Content-Length: 411 without one, 400 unless positive, 413 over a block's size. */
export function uploadSize(contentLength: string | undefined): number {
  if (contentLength === undefined) throw new ApiError('length_required', 'Content-Length is required for a block upload');
  const size = Number(contentLength);
  if (!Number.isSafeInteger(size) || size < 1) throw invalidRequest('Content-Length', 'Content-Length: must be a positive integer');
  if (size > maxBlockBytes) throw new ApiError('too_large', `a block is at most ${maxBlockBytes} bytes`);
  return size;
}

/** Stores a block streamed from `body`: 422 when it does not hash to its name, 400 when it is not `size` bytes. */
export async function storeBlock(blocks: Pick<BlockStore, 'put'>, sha256: string, size: number, body: Readable): Promise<void> {
  try {
    await blocks.put(sha256, size, body);
  } catch (err) {
    if (err instanceof BlockHashMismatchError) throw new ApiError('hash_mismatch', `the body does not hash to ${sha256}; nothing was stored`, { cause: err });
    if (err instanceof BlockSizeMismatchError) throw new ApiError('invalid_request', `body: ${err.message}`, { details: { field: 'body' }, cause: err });
    throw err;
  }
}
