// The folder scan on a temp folder: what is ignored, what is a problem, that a file is hashed
// only when its size, mtime or inode changed, and that a file changing while it is read is
// never recorded half-old half-new. Also the backoff of `run`.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backoffMs, isTransient } from './engine.ts';
import { BlockBuffers } from '../block-buffers.ts';
import {
  FileChangedError,
  blockStream,
  contentHashOfBlocks,
  fileChunks,
  isIgnored,
  loadIgnore,
  lstatAll,
  readBlocks,
  scanFolder,
} from './scan.ts';
import { StateDb } from './state.ts';
import { ApiError } from '@meshwork/contract';
import { NetworkError } from '../errors.ts';

let dir: string;
let state: StateDb;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshwork-scan-'));
  state = new StateDb(join(dir, '.state', 'agent.db'));
});

afterEach(() => {
  state.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('lstatAll', () => {
  it('answers every path in order, a few at a time, undefined where there is nothing to stat', async () => {
    mkdirSync(join(dir, 'sub'));
    const paths: string[] = [];
    for (let i = 0; i < 40; i++) {
      const path = join(dir, `f${i}`);
      if (i % 7 !== 3) writeFileSync(path, 'x'.repeat(i));
      paths.push(path);
    }
    paths.push(join(dir, 'sub'), join(dir, 'bad\0name'));
    for (const limit of [1, 3, 16, 100]) {
      const stats = await lstatAll(paths, limit);
      expect(stats).toHaveLength(paths.length);
      for (let i = 0; i < 40; i++) {
        if (i % 7 === 3) expect(stats[i], `f${i}`).toBeUndefined();
        else expect(stats[i]?.size, `f${i}`).toBe(i);
      }
      expect(stats[40]?.isDirectory()).toBe(true);
      expect(stats[41]).toBeUndefined();
    }
    expect(await lstatAll([], 16)).toEqual([]);
  });
});

describe('ignore rules', () => {
  it.each([
    ['notes.txt', false],
    ['.notes.txt.swp', true],
    ['draft~', true],
    ['.#draft', true],
    ['#draft#', true],
    ['photos/.DS_Store', true],
    ['Thumbs.db', true],
    ['upload.tmp', true],
    ['~$report.docx', true],
    ['.meshwork-tmp-1a2b3c', true],
    ['.meshworkignore', false],
    ['build/out.o', true],
    ['src/keep.log', false],
    ['debug.log', true],
  ])('%s ignored: %s', (path, ignored) => {
    writeFileSync(join(dir, '.meshworkignore'), 'build/\n*.log\n!src/keep.log\n');
    const rules = loadIgnore(dir);
    expect(isIgnored(rules, path)).toBe(ignored);
  });

  it('ignores a directory named by a directory pattern', () => {
    writeFileSync(join(dir, '.meshworkignore'), 'build/\n');
    expect(isIgnored(loadIgnore(dir), 'build', true)).toBe(true);
    expect(isIgnored(loadIgnore(dir), 'build', false)).toBe(false);
  });
});

describe('scanFolder', () => {
  const rules = (): ReturnType<typeof loadIgnore> => loadIgnore(dir, ['.state/']);

  it('lists files and directories, skips ignored ones, reports symlinks', async () => {
    mkdirSync(join(dir, 'a/b'), { recursive: true });
    writeFileSync(join(dir, 'a/one.txt'), 'one');
    writeFileSync(join(dir, 'x.swp'), 'swap');
    symlinkSync('/etc/hostname', join(dir, 'link'));
    const scan = await scanFolder(dir, state, new Map(), rules());
    expect([...scan.entries.keys()].sort()).toEqual(['a', 'a/b', 'a/one.txt']);
    expect(scan.problems.get('link')?.code).toBe('symlink');
    expect(scan.skipped.has('link')).toBe(true);
    expect(scan.entries.get('a/one.txt')?.contentHash).toBe(
      contentHashOfBlocks([{ sha256: '7692c3ad3540bb803c020b3aee66cd8887123234ea0c6e7143c0add73ff431ed', size: 3 }]),
    );
  });

  it('reports a fifo as not a file', async () => {
    expect(spawnSync('mkfifo', [join(dir, 'pipe')]).status).toBe(0);
    const scan = await scanFolder(dir, state, new Map(), rules());
    expect(scan.problems.get('pipe')?.code).toBe('not_a_file');
    expect(scan.entries.has('pipe')).toBe(false);
  });

  it('hashes a file again only when its size, mtime or inode changed', async () => {
    writeFileSync(join(dir, 'f'), 'first');
    expect((await scanFolder(dir, state, new Map(), rules())).changed).toBe(1);
    expect((await scanFolder(dir, state, new Map(), rules())).changed).toBe(0);
    utimesSync(join(dir, 'f'), new Date(), new Date(Date.now() + 5000));
    expect((await scanFolder(dir, state, new Map(), rules())).changed).toBe(1);
    writeFileSync(join(dir, 'f.new'), 'second');
    rmSync(join(dir, 'f'));
    const scan = await scanFolder(dir, state, new Map(), rules());
    expect(scan.changed).toBe(1);
    expect(scan.entries.has('f')).toBe(false);
  });
});

describe('scanFolder on a larger folder', () => {
  it('records every file with its blocks, in the order of a walk of sorted names, whatever order the reads end in', async () => {
    const rules = loadIgnore(dir, ['.state/']);
    const contents = new Map<string, Buffer>();
    const put = (path: string, bytes: Buffer): void => {
      writeFileSync(join(dir, path), bytes);
      contents.set(path, bytes);
    };
    mkdirSync(join(dir, 'b/inner'), { recursive: true });
    mkdirSync(join(dir, 'a'));
    // Small files (read several at a time), one of over 256 KiB and one of over 4 MiB (read alone).
    for (let i = 0; i < 150; i++)
      put(`${i % 2 === 0 ? 'a' : 'b/inner'}/f${String(i).padStart(3, '0')}`, randomBytes(1 + ((i * 997) % 5000)));
    put('b/big', randomBytes(300 * 1024));
    put('huge', randomBytes(4 * 1024 * 1024 + 5));
    writeFileSync(join(dir, 'a/skip.swp'), 'swap');
    writeFileSync(join(dir, 'a/locked'), 'secret');
    const { chmodSync } = await import('node:fs');
    chmodSync(join(dir, 'a/locked'), 0o000);
    const readable = process.getuid?.() === 0;

    const scan = await scanFolder(dir, state, new Map(), rules);
    const expectedOrder = ['a', ...(readable ? ['a/locked'] : []), ...[...contents.keys()].filter((p) => p.startsWith('a/')).sort()];
    expectedOrder.sort();
    const walked = [
      ...expectedOrder,
      'b',
      'b/big',
      'b/inner',
      ...[...contents.keys()].filter((p) => p.startsWith('b/inner/')).sort(),
      'huge',
    ];
    expect([...scan.entries.keys()]).toEqual(walked);
    for (const [path, bytes] of contents) {
      const blocks = [];
      for (let at = 0; at < bytes.length; at += 4 * 1024 * 1024) {
        const part = bytes.subarray(at, at + 4 * 1024 * 1024);
        blocks.push({ sha256: createHash('sha256').update(part).digest('hex'), size: part.length });
      }
      expect(scan.entries.get(path)?.blocks, path).toEqual(blocks);
    }
    expect(scan.files).toBe(contents.size + 1);
    if (!readable) expect(scan.problems.get('a/locked')?.code).toBe('read_error');
    expect(scan.changed).toBe(contents.size + 1);
    // Nothing changed: nothing is read again, and the entries are the same.
    const again = await scanFolder(dir, state, new Map(), rules);
    expect(again.changed).toBe(readable ? 0 : 1);
    expect([...again.entries.keys()]).toEqual(walked);
  });
});

describe('blockStream', () => {
  const readAll = async (stream: ReadableStream<Uint8Array>): Promise<{ bytes: Buffer; chunks: number }> => {
    const chunks: Uint8Array[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    return { bytes: Buffer.concat(chunks), chunks: chunks.length };
  };

  it('reads exactly the range asked for, in chunks of at most 256 KiB', async () => {
    const file = join(dir, 'f');
    const content = randomBytes(600 * 1024);
    writeFileSync(file, content);
    const { bytes, chunks } = await readAll(blockStream(file, 1000, 520 * 1024));
    expect(bytes.equals(content.subarray(1000, 1000 + 520 * 1024))).toBe(true);
    expect(chunks).toBe(3);
  });

  it('errors with FileChangedError when the file ends before the range does', async () => {
    const file = join(dir, 'f');
    writeFileSync(file, randomBytes(1000));
    await expect(readAll(blockStream(file, 500, 1000))).rejects.toBeInstanceOf(FileChangedError);
  });
});

describe('readBlocks', () => {
  it('raises FileChangedError for a file that changed since it was scanned', async () => {
    const file = join(dir, 'f');
    writeFileSync(file, 'v1');
    const { stat } = await readBlocks(file, undefined);
    writeFileSync(file, 'v2 longer');
    await expect(readBlocks(file, stat)).rejects.toBeInstanceOf(FileChangedError);
  });

  it('raises FileChangedError for a file that changes while it is read', async () => {
    const file = join(dir, 'f');
    writeFileSync(file, 'v1');
    const read = readBlocks(file, undefined, async () => {
      appendFileSync(file, ' and more');
      await Promise.resolve();
    });
    await expect(read).rejects.toBeInstanceOf(FileChangedError);
  });

  it('splits into blocks of 4 MiB', async () => {
    const file = join(dir, 'f');
    writeFileSync(file, new Uint8Array(4 * 1024 * 1024 + 1));
    const { blocks } = await readBlocks(file, undefined);
    expect(blocks.map((b) => b.size)).toEqual([4 * 1024 * 1024, 1]);
  });
});

describe('fileChunks (what an upload reads)', () => {
  it('hands over the file in 4 MiB chunks', async () => {
    const file = join(dir, 'f');
    writeFileSync(file, new Uint8Array(5 * 1024 * 1024));
    const { stat } = await readBlocks(file, undefined);
    const sizes: number[] = [];
    for await (const chunk of fileChunks(file, stat)) sizes.push(chunk.length);
    expect(sizes).toEqual([4 * 1024 * 1024, 1024 * 1024]);
  });

  it.each([
    { case: 'a small file', size: 4096, pooled: [false] },
    { case: 'a file of exactly one block', size: 4 * 1024 * 1024, pooled: [true] },
    { case: 'whole blocks and a shorter last one', size: 9 * 1024 * 1024, pooled: [true, true, false] },
  ])('reads only whole 4 MiB blocks into pooled buffers: $case', async ({ size, pooled }) => {
    const file = join(dir, 'f');
    const content = randomBytes(size);
    writeFileSync(file, content);
    const { stat } = await readBlocks(file, undefined);
    const pool = new BlockBuffers();
    const seen: boolean[] = [];
    const read: Uint8Array[] = [];
    for await (const chunk of fileChunks(file, stat, undefined, pool)) {
      seen.push(chunk.buffer.byteLength === 4 * 1024 * 1024);
      read.push(Uint8Array.from(chunk));
      pool.give(chunk);
    }
    expect(seen).toEqual(pooled);
    expect(Buffer.concat(read).equals(content)).toBe(true);
    // What went back to the pool is only its own 4 MiB buffers: at most one here, reused.
    expect(pool.free).toBe(pooled.some(Boolean) ? 1 : 0);
  });

  it('raises FileChangedError when the file changes during the upload, before anything is committed', async () => {
    const file = join(dir, 'f');
    writeFileSync(file, new Uint8Array(5 * 1024 * 1024));
    const { stat } = await readBlocks(file, undefined);
    const read = (async () => {
      let read = 0;
      for await (const chunk of fileChunks(file, stat)) {
        read += chunk.length;
        appendFileSync(file, 'more');
      }
      return read;
    })();
    await expect(read).rejects.toBeInstanceOf(FileChangedError);
  });

  it('fails for an unreadable folder instead of reporting it empty', async () => {
    await expect(scanFolder(join(dir, 'missing'), state, new Map(), loadIgnore(dir))).rejects.toThrow(/cannot be read/);
  });
});

describe('backoff', () => {
  it.each([
    [1, 0, undefined, 250],
    [1, 0.999, undefined, 500],
    [3, 0, undefined, 1000],
    [10, 0, undefined, 15_000],
    [10, 0.999, undefined, 29_985],
    [1, 0, 3000, 3000],
    [1, 0.5, 3000, 3300],
    [1, 0, 120_000, 120_000],
  ])('after %i failures (random %f, Retry-After %s) waits %i ms', (failures, random, retryAfter, ms) => {
    expect(backoffMs(failures, random, retryAfter)).toBe(ms);
  });

  it.each([
    [new NetworkError('down', { cause: undefined }), true],
    [new ApiError('rate_limited', 'slow down'), true],
    [new ApiError('store_unavailable', 'etcd'), true],
    [new ApiError('precondition_failed', 'lost a race'), false],
    [new ApiError('unauthenticated', 'revoked'), false],
  ])('%s is transient: %s', (err, transient) => {
    expect(isTransient(err)).toBe(transient);
  });
});
