// Block splitting and hashing: blocks of exactly the block size whatever the chunking of the
// source, nothing lost or duplicated, and the hashes the server computes.
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { contentHashOf, maxBlockSize, sha256Hex, splitBlocks, type UploadSource, webSha256Hex } from './blocks.ts';

async function collect(source: UploadSource, blockSize: number): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const block of splitBlocks(source, blockSize)) out.push(Uint8Array.from(block));
  return out;
}

const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) % 251);

async function* chunked(data: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
  let offset = 0;
  for (let i = 0; offset < data.length; i++) {
    // A turn of the event loop between chunks, as a real stream has.
    await Promise.resolve();
    const n = sizes[i % sizes.length]!;
    yield data.subarray(offset, offset + n);
    offset += n;
  }
}

describe('splitBlocks', () => {
  const data = bytes(1000);
  it.each([
    ['bytes', (): UploadSource => data],
    ['a Blob', (): UploadSource => new Blob([data])],
    ['a web stream', (): UploadSource => new Blob([data]).stream()],
    ['chunks smaller than a block', (): UploadSource => chunked(data, [7])],
    ['chunks larger than a block', (): UploadSource => chunked(data, [333])],
    ['chunks of mixed sizes, empty ones too', (): UploadSource => chunked(data, [1, 0, 256, 99, 0, 500])],
    ['a short chunk, then one of several blocks', (): UploadSource => chunked(data, [10, 990])],
    ['a sync iterable', (): UploadSource => [data.subarray(0, 10), data.subarray(10)]],
  ])('splits %s into exact blocks', async (_what, source) => {
    const blocks = await collect(source(), 256);
    expect(blocks.map((b) => b.length)).toEqual([256, 256, 256, 232]);
    expect(Buffer.concat(blocks)).toEqual(Buffer.from(data));
  });

  it('yields one short block for a small source and none for an empty one', async () => {
    expect((await collect(bytes(5), 256)).map((b) => b.length)).toEqual([5]);
    expect(await collect(new Uint8Array(0), 256)).toEqual([]);
    expect(await collect(chunked(new Uint8Array(0), [1]), 256)).toEqual([]);
  });

  it('hands on a last chunk shorter than a block as it came, without copying it into a block-sized buffer', async () => {
    const small = bytes(100);
    const out: Uint8Array[] = [];
    for await (const block of splitBlocks(chunked(small, [100]), 256)) out.push(block);
    expect(out).toHaveLength(1);
    expect(out[0]!.buffer).toBe(small.buffer);
    expect(out[0]!.buffer.byteLength).toBe(100);
  });

  it('yields an exact multiple without an empty tail', async () => {
    expect((await collect(chunked(bytes(512), [100]), 256)).map((b) => b.length)).toEqual([256, 256]);
  });

  it('refuses a block size above 4 MiB or below 1', async () => {
    await expect(collect(bytes(1), maxBlockSize + 1)).rejects.toThrow(RangeError);
    await expect(collect(bytes(1), 0)).rejects.toThrow(RangeError);
  });

  it('assembles blocks in the buffers `take` gives, and refuses one of another length', async () => {
    const given: Uint8Array[] = [];
    const take = (): Uint8Array => {
      const buffer = new Uint8Array(256);
      given.push(buffer);
      return buffer;
    };
    const blocks: Uint8Array[] = [];
    for await (const block of splitBlocks(chunked(data, [7]), 256, take)) blocks.push(block);
    expect(Buffer.concat(blocks)).toEqual(Buffer.from(data));
    expect(given).toHaveLength(4);
    expect(blocks.map((b) => b.buffer)).toEqual(given.map((g) => g.buffer));
    await expect(
      (async () => {
        for await (const block of splitBlocks(chunked(data, [7]), 256, () => new Uint8Array(255))) void block;
      })(),
    ).rejects.toThrow(/take gave 255 bytes, not 256/);
  });

  it('pulls from the source only as blocks are consumed', async () => {
    let pulled = 0;
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 100; i++) {
        await Promise.resolve();
        pulled++;
        yield bytes(100);
      }
    }
    const blocks = splitBlocks(source(), 200);
    await blocks.next();
    expect(pulled).toBe(2);
    await blocks.return(undefined);
  });
});

describe('hashes', () => {
  it('sha256Hex matches node:crypto', async () => {
    const data = bytes(70_000);
    expect(await sha256Hex(data)).toBe(createHash('sha256').update(data).digest('hex'));
    expect(await sha256Hex(new Uint8Array(0))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  afterEach(() => void vi.restoreAllMocks());

  it('in Node, hashes the bytes where they are rather than by WebCrypto', async () => {
    const digest = vi.spyOn(crypto.subtle, 'digest');
    // A view into a larger buffer: only its own bytes count.
    const whole = bytes(9_000);
    const view = whole.subarray(1_000, 5_000);
    expect(await sha256Hex(view)).toBe(
      createHash('sha256')
        .update(Buffer.from(whole.buffer, 1_000, 4_000))
        .digest('hex'),
    );
    expect(digest).not.toHaveBeenCalled();
  });

  it('webSha256Hex, the path outside Node, gives the same hashes', async () => {
    const whole = bytes(70_000);
    for (const data of [whole, whole.subarray(3, 65_539), new Uint8Array(0)])
      expect(await webSha256Hex(data)).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('contentHashOf hashes the sha256:size lines of the blocks', async () => {
    const blocks = [
      { sha256: 'a'.repeat(64), size: 4 },
      { sha256: 'b'.repeat(64), size: 2 },
    ];
    const expected = createHash('sha256')
      .update(`${'a'.repeat(64)}:4\n${'b'.repeat(64)}:2\n`)
      .digest('hex');
    expect(await contentHashOf(blocks)).toBe(expected);
  });
});
