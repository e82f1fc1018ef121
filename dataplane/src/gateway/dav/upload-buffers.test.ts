import { describe, expect, it } from 'vitest';
import { maxBlockSize } from '@meshwork/client';
import { GcPacer } from '@meshwork/contract';
import { UploadBuffers } from './upload-buffers.ts';

function pacer(): { pacer: GcPacer; collections: string[] } {
  const collections: string[] = [];
  return { pacer: new GcPacer((options) => void collections.push(options.type)), collections };
}

describe('UploadBuffers', () => {
  it('hands out again a buffer given back', () => {
    const { pacer: p } = pacer();
    const buffers = new UploadBuffers(2, p);
    const first = buffers.take();
    expect(first.byteLength).toBe(maxBlockSize);
    buffers.give(first);
    expect(buffers.take().buffer).toBe(first.buffer);
    expect(buffers.made).toBe(1);
  });

  it('takes back only 4 MiB buffers that are not detached (a view gives back its buffer), and keeps at most `keep`', () => {
    const { pacer: p } = pacer();
    const buffers = new UploadBuffers(1, p);
    const whole = buffers.take();
    buffers.give(new Uint8Array(1000));
    buffers.give(whole.subarray(0, 10));
    expect(buffers.take().buffer).toBe(whole.buffer);
    const moved = buffers.take();
    (moved.buffer as ArrayBuffer).transfer();
    buffers.give(moved);
    expect(buffers.take().buffer).not.toBe(moved.buffer);
    const a = new Uint8Array(maxBlockSize);
    const b = new Uint8Array(maxBlockSize);
    buffers.give(a);
    buffers.give(b);
    expect(buffers.take().buffer).toBe(a.buffer);
    expect(buffers.take().buffer).not.toBe(b.buffer);
    expect(buffers.made).toBe(4);
  });

  it('keeps a buffer given back twice once, so that no two blocks are filled in it', () => {
    const { pacer: p } = pacer();
    const buffers = new UploadBuffers(4, p);
    const block = buffers.take();
    buffers.give(block);
    buffers.give(block.subarray(0, 100));
    const first = buffers.take();
    const second = buffers.take();
    expect(first.buffer).toBe(block.buffer);
    expect(second.buffer).not.toBe(block.buffer);
    expect(buffers.made).toBe(2);
  });

  it('asks for a full collection when dropped after a large file only', () => {
    const small = pacer();
    const few = new UploadBuffers(8, small.pacer);
    for (let i = 0; i < 3; i++) few.take();
    few.drop();
    expect(small.collections).toEqual([]);
    const large = pacer();
    const many = new UploadBuffers(8, large.pacer);
    for (let i = 0; i < 4; i++) many.take();
    many.drop();
    expect(large.collections).toEqual(['major']);
  });
});
