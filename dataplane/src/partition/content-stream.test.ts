import { createHash } from 'node:crypto';
import { PassThrough, Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BlockHashMismatchError } from '../stores/hash-verifier.ts';
import { pumpVerifiedBlock } from './content-stream.ts';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const chunks = [Buffer.from('0123456789'), Buffer.from('abcdefghij'), Buffer.from('KLMNOPQRST')];
const block = Buffer.concat(chunks);

function collector(): { sink: Writable; received: () => Buffer } {
  const parts: Buffer[] = [];
  const sink = new Writable({
    highWaterMark: 4,
    write(chunk: Buffer, _enc, callback) {
      parts.push(chunk);
      setImmediate(callback);
    },
  });
  return { sink, received: () => Buffer.concat(parts) };
}

describe('pumpVerifiedBlock', () => {
  it.each([
    [0, 30],
    [5, 10],
    [12, 18],
    [29, 1],
  ])('forwards bytes %i..+%i of a verified block, with backpressure', async (skip, take) => {
    const { sink, received } = collector();
    await pumpVerifiedBlock(Readable.from(chunks), { sha256: sha(block), size: block.length, skip, take }, sink);
    await new Promise<void>((resolve) => sink.end(resolve));
    expect(received().toString()).toBe(block.subarray(skip, skip + take).toString());
  });

  it('fails on a corrupt block without forwarding its last chunk', async () => {
    const { sink, received } = collector();
    const corrupt = [chunks[0]!, Buffer.from('abcdefghiX'), chunks[2]!];
    const pumping = pumpVerifiedBlock(Readable.from(corrupt), { sha256: sha(block), size: block.length, skip: 0, take: 30 }, sink);
    await expect(pumping).rejects.toBeInstanceOf(BlockHashMismatchError);
    expect(received().length).toBeLessThan(block.length);
    expect(block.subarray(0, received().length).equals(received())).toBe(false);
  });

  it('does not hash a block the store vouches for, but still checks its size and holds its last chunk until the end', async () => {
    // Bytes that do not hash to the name go through: the store's kept checksum stands for them (ADR 77).
    const other = [chunks[0]!, Buffer.from('abcdefghiX'), chunks[2]!];
    const { sink, received } = collector();
    await pumpVerifiedBlock(Readable.from(other), { sha256: sha(block), size: block.length, skip: 0, take: 30 }, sink, true);
    await new Promise<void>((resolve) => sink.end(resolve));
    expect(received()).toEqual(Buffer.concat(other));

    const short = collector();
    const pumping = pumpVerifiedBlock(
      Readable.from(chunks.slice(0, 2)),
      { sha256: sha(block), size: block.length, skip: 0, take: 30 },
      short.sink,
      true,
    );
    await expect(pumping).rejects.toBeInstanceOf(BlockHashMismatchError);
    expect(short.received().length).toBe(chunks[0]!.length);
  });

  it('fails when the sink closes first and stops reading the source', async () => {
    const source = new PassThrough();
    source.write(chunks[0]);
    const { sink } = collector();
    const pumping = pumpVerifiedBlock(source, { sha256: sha(block), size: block.length, skip: 0, take: 30 }, sink);
    sink.destroy();
    await expect(pumping).rejects.toThrow('closed');
    expect(source.destroyed).toBe(true);
  });
});
