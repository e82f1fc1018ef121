// The sink of a download from the cloud: every byte reaches the file once, in order, whatever
// the sizes of the chunks and however slow the disk; a failed write fails the stream; and a
// chunk is never kept once the sink took it. writeAll: a short write goes on where it stopped.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fileSink, writeAll } from './file-sink.ts';

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** A file that takes at most `step` bytes per call, as a short write would. */
function shortWrites(step: number): { writev(buffers: Uint8Array[]): Promise<{ bytesWritten: number }>; bytes: number[]; calls: number } {
  const file = {
    bytes: [] as number[],
    calls: 0,
    writev(buffers: Uint8Array[]) {
      file.calls++;
      let room = step;
      let taken = 0;
      for (const b of buffers) {
        const n = Math.min(room, b.length);
        file.bytes.push(...b.subarray(0, n));
        room -= n;
        taken += n;
        if (room === 0) break;
      }
      return Promise.resolve({ bytesWritten: taken });
    },
  };
  return file;
}

describe('writeAll', () => {
  it('writes several buffers to a real file in one call, in order', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshwork-write-all-'));
    dirs.push(dir);
    const handle = await open(join(dir, 'f'), 'w');
    try {
      const parts = [Buffer.from('alpha '), Buffer.alloc(0), Buffer.from('beta '), Buffer.from('gamma')];
      await expect(writeAll(handle, parts)).resolves.toBe(16);
      await expect(writeAll(handle, [Buffer.from('!')])).resolves.toBe(1);
    } finally {
      await handle.close();
    }
    expect(await readFile(join(dir, 'f'), 'utf8')).toBe('alpha beta gamma!');
  });

  it.each([1, 3, 4, 7, 100])('goes on after short writes of %i bytes where each stopped', async (step) => {
    const file = shortWrites(step);
    const parts = [Uint8Array.from([1, 2, 3, 4]), Uint8Array.from([5]), Uint8Array.from([6, 7, 8])];
    await expect(writeAll(file, parts)).resolves.toBe(8);
    expect(file.bytes).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(file.calls).toBe(Math.ceil(8 / step));
  });

  it('fails rather than spin when the file takes nothing', async () => {
    const file = shortWrites(0);
    await expect(writeAll(file, [Uint8Array.from([1])])).rejects.toThrow(/took none of 1 bytes/);
  });

  it('asks nothing of the file for nothing to write', async () => {
    const file = shortWrites(4);
    await expect(writeAll(file, [new Uint8Array(0)])).resolves.toBe(0);
    expect(file.calls).toBe(0);
  });
});

/** A file in memory whose writes take `delayMs` each, recording how many overlap. */
function slowFile(delayMs: number): {
  writev(buffers: Uint8Array[]): Promise<{ bytesWritten: number }>;
  bytes: Buffer[];
  calls: number;
  maxOverlap: number;
} {
  let open = 0;
  const file = {
    bytes: [] as Buffer[],
    calls: 0,
    maxOverlap: 0,
    async writev(buffers: Uint8Array[]) {
      file.calls++;
      open++;
      file.maxOverlap = Math.max(file.maxOverlap, open);
      // Copied when the write starts, as the kernel would: a buffer changed later must not show.
      const copies = buffers.map((b) => Buffer.from(b));
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      file.bytes.push(...copies);
      open--;
      return { bytesWritten: copies.reduce((n, b) => n + b.length, 0) };
    },
  };
  return file;
}

/** `total` bytes cut into chunks of the sizes in `sizes`, in turn. */
function chunksOf(data: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let offset = 0, i = 0; offset < data.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, data.length - offset);
    out.push(data.subarray(offset, offset + n));
    offset += n;
  }
  return out;
}

const sha = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

describe('fileSink', () => {
  it.each([
    ['chunks smaller than a buffer', [65_536, 1000, 7]],
    ['chunks larger than both buffers', [300_000]],
    ['chunks that end exactly at a buffer', [1024]],
    ['one byte at a time and large ones', [1, 200_000, 3]],
  ])('writes every byte once, in order: %s', async (_, sizes) => {
    const file = slowFile(2);
    const data = randomBytes(1_000_000 + 17);
    const reported: number[] = [];
    await pipeline(
      Readable.from(chunksOf(data, sizes)),
      fileSink(file, (n) => reported.push(n), 128 * 1024),
    );
    const out = Buffer.concat(file.bytes);
    expect(out.length).toBe(data.length);
    expect(sha(out)).toBe(sha(data));
    expect(reported.reduce((a, b) => a + b, 0)).toBe(data.length);
    // Appends to one file never overlap, and each carries a whole buffer but the last.
    expect(file.maxOverlap).toBe(1);
    expect(file.calls).toBe(Math.ceil(data.length / (128 * 1024)));
  });

  it('writes a real file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshwork-file-sink-'));
    dirs.push(dir);
    const handle = await open(join(dir, 'f'), 'w');
    const data = randomBytes(3 * 1024 * 1024 + 5);
    try {
      await pipeline(
        Readable.from(chunksOf(data, [65_536, 4096])),
        fileSink(handle, () => undefined),
      );
    } finally {
      await handle.close();
    }
    expect(sha(await readFile(join(dir, 'f')))).toBe(sha(data));
  });

  it('keeps no chunk it was given: a chunk changed after it was taken changes nothing', async () => {
    const file = slowFile(5);
    const sink = fileSink(file, () => undefined, 64);
    const chunk = Buffer.alloc(40, 1);
    await new Promise<void>((resolve, reject) => sink.write(chunk, (err) => (err ? reject(err) : resolve())));
    chunk.fill(9);
    await new Promise<void>((resolve, reject) => sink.write(Buffer.alloc(40, 2), (err) => (err ? reject(err) : resolve())));
    await new Promise<void>((resolve, reject) => sink.end((err?: Error | null) => (err ? reject(err) : resolve())));
    expect([...Buffer.concat(file.bytes)]).toEqual([...Buffer.alloc(40, 1), ...Buffer.alloc(40, 2)]);
  });

  it('fails the stream when the file fails, and writes nothing after', async () => {
    let calls = 0;
    const file = {
      writev(): Promise<{ bytesWritten: number }> {
        calls++;
        return Promise.reject(new Error('ENOSPC: no space left on device'));
      },
    };
    const data = randomBytes(500_000);
    await expect(
      pipeline(
        Readable.from(chunksOf(data, [10_000])),
        fileSink(file, () => undefined, 64 * 1024),
      ),
    ).rejects.toThrow(/ENOSPC/);
    expect(calls).toBe(1);
  });

  it('writes nothing for an empty download', async () => {
    const file = slowFile(1);
    await pipeline(
      Readable.from([]),
      fileSink(file, () => undefined),
    );
    expect(file.calls).toBe(0);
  });
});
