// Which parts of which blocks make up a byte range of a file, and the file's content hash.
import { createHash } from 'node:crypto';
import type { ByteRange } from '../http/range.ts';
import type { BlockRef } from './schemas.ts';

/** One block to read, and the slice of it that belongs to the requested range. */
export interface BlockRead {
  sha256: string;
  size: number;
  /** Bytes of the block to skip before the slice. */
  skip: number;
  /** Bytes of the slice. */
  take: number;
}

/** The block reads that produce bytes `range.start..range.end` of a file made of `blocks`. */
export function planBlockReads(blocks: readonly BlockRef[], range: ByteRange): BlockRead[] {
  const reads: BlockRead[] = [];
  let offset = 0;
  for (const block of blocks) {
    const blockEnd = offset + block.size - 1;
    if (blockEnd >= range.start && offset <= range.end) {
      const skip = Math.max(0, range.start - offset);
      const last = Math.min(block.size - 1, range.end - offset);
      reads.push({ sha256: block.sha256, size: block.size, skip, take: last - skip + 1 });
    }
    offset += block.size;
    if (offset > range.end) break;
  }
  return reads;
}

/**
 * The content hash of a file: sha256 over its ordered block hashes. Equal content in equal
 * blocks has an equal hash, so it serves as a strong ETag without reading the content.
 */
export function contentHashOf(blocks: readonly BlockRef[]): string {
  const hash = createHash('sha256');
  for (const block of blocks) hash.update(`${block.sha256}:${block.size}\n`);
  return hash.digest('hex');
}
