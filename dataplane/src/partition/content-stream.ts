// Streams blocks from S3 to an HTTP response with one stage per chunk: hash, slice, write.
// Backpressure is explicit (pause the S3 stream until the response drains), and the last
// chunk of every block is held back until the block's hash (or, where the store vouches for the
// block with the checksum it kept since the write, its size: ADR 77) is verified, so a corrupt
// block never completes a response: the client sees fewer bytes than Content-Length.
import { createHash } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { processGcPacer } from '@meshwork/contract';
import type { BlockBody, BlockStore } from '../stores/block-store.ts';
import { BlockHashMismatchError } from '../stores/hash-verifier.ts';
import type { BlockRead } from './content-plan.ts';

/** Raised when the client went away before the content was sent. */
export class ClientGoneError extends Error {
  override readonly name = 'ClientGoneError';
}

/**
 * Forwards one block's slice from `source` to `sink`, verifying the whole block's hash, or only
 * its size when `storeChecked` (the store's kept checksum names the block).
 */
export function pumpVerifiedBlock(source: Readable, read: BlockRead, sink: Writable, storeChecked = false): Promise<void> {
  return new Promise((resolve, reject) => {
    const hash = storeChecked ? undefined : createHash('sha256');
    const sliceEnd = read.skip + read.take;
    let received = 0;
    let held: Buffer | undefined;
    let heldAt = 0;
    let settled = false;
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      sink.off('close', onSinkClose);
      sink.off('drain', onDrain);
      if (err) {
        source.destroy();
        reject(err);
      } else {
        resolve();
      }
    };
    const onDrain = (): void => {
      source.resume();
    };
    const onSinkClose = (): void => finish(new ClientGoneError('the client closed the connection'));
    const forward = (chunk: Buffer, at: number): void => {
      const start = Math.max(0, read.skip - at);
      const end = Math.min(chunk.length, sliceEnd - at);
      if (end <= start) return;
      if (!sink.write(start === 0 && end === chunk.length ? chunk : chunk.subarray(start, end))) {
        source.pause();
        sink.once('drain', onDrain);
      }
    };
    source.on('data', (chunk: Buffer) => {
      processGcPacer.streamed(chunk.length);
      hash?.update(chunk);
      if (held) forward(held, heldAt);
      held = chunk;
      heldAt = received;
      received += chunk.length;
    });
    source.once('end', () => {
      // Unhashed (store-checked), a block of the wrong size is still refused.
      const actual = hash?.digest('hex');
      if (received !== read.size || (actual !== undefined && actual !== read.sha256)) {
        finish(new BlockHashMismatchError(read.sha256, actual ?? 'unknown', received));
        return;
      }
      if (held) forward(held, heldAt);
      finish();
    });
    source.once('error', (err) => finish(err));
    sink.once('close', onSinkClose);
  });
}

/**
 * Sends the slices of `reads` to `sink` in order. The next block's S3 request is opened while
 * the current one streams, so S3 latency is paid once per file rather than once per block.
 */
export async function sendBlocks(blocks: BlockStore, reads: readonly BlockRead[], sink: Writable): Promise<void> {
  const open = (read: BlockRead | undefined): Promise<BlockBody> | undefined => {
    if (read === undefined) return undefined;
    const opening = blocks.read(read.sha256);
    opening.catch(() => undefined);
    return opening;
  };
  let pending = open(reads[0]);
  try {
    for (let i = 0; i < reads.length; i++) {
      const source = await pending!;
      pending = open(reads[i + 1]);
      await pumpVerifiedBlock(source.body, reads[i]!, sink, source.storeChecked);
    }
  } finally {
    pending?.then(
      (s) => s.body.destroy(),
      () => undefined,
    );
  }
}
