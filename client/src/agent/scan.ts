// Reading the folder: which paths are synced (`.meshworkignore` in gitignore syntax plus the
// temporary files of editors, operating systems and the agent itself), what each holds, and
// what cannot be synced (symlinks are not followed, sockets and devices are not files, an
// unreadable file is a problem, not a deletion). A file is hashed only when its size, mtime or
// inode differ from the base or the hash cache; a file that changes while it is read is left
// for a later pass rather than recorded half-old half-new.
import { createHash } from 'node:crypto';
import { lstat as lstatCallback, readFileSync, type Stats } from 'node:fs';
import { lstat, open, readdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { processGcPacer } from '@meshwork/contract/gc-pacer';
import type { BlockBuffers } from '../block-buffers.ts';
import { maxBlockSize } from '../blocks.ts';
import type { BlockRef } from '../types.ts';
import type { ProblemCode } from './index.ts';
import type { BaseRow, FileStat, HashRow, StateDb } from './state.ts';

/** The prefix of the agent's own temporary files (downloads in progress). */
export const tempPrefix = '.meshwork-tmp-';

/** Names never synced: temporary files of common editors and operating systems, and the agent's own. */
export const builtinIgnores: readonly string[] = [
  '*.swp',
  '*.swo',
  '*~',
  '.#*',
  // A leading # starts a comment in gitignore syntax: escaped, it is Emacs's auto-save name.
  '\\#*#',
  '.DS_Store',
  'Thumbs.db',
  'desktop.ini',
  '*.tmp',
  '~$*',
  `${tempPrefix}*`,
  '.meshworkignore.tmp',
];

const builtinRules = ignore().add(builtinIgnores);

/** Whether a file name is one of the built-in ignores (a temporary file of an editor, the OS or the agent). */
export function isBuiltinIgnored(name: string): boolean {
  return builtinRules.ignores(name);
}

/** The ignore rules of a folder: built-ins, its `.meshworkignore`, and extra paths (the state database when it lives inside). */
export function loadIgnore(dir: string, extra: readonly string[] = []): Ignore {
  const rules = ignore().add(builtinIgnores);
  try {
    rules.add(readFileSync(join(dir, '.meshworkignore'), 'utf8'));
  } catch {
    // No .meshworkignore: the built-ins alone.
  }
  return rules.add(extra);
}

/** Whether a relative path is ignored (a directory is asked about with a trailing slash too). */
export function isIgnored(rules: Ignore, path: string, directory = false): boolean {
  return rules.ignores(path) || (directory && rules.ignores(`${path}/`));
}

/** A local path as the scan saw it. */
export interface LocalEntry {
  kind: 'file' | 'directory';
  stat: FileStat;
  /** Blocks and content hash of a file (empty and null for a directory). */
  blocks: BlockRef[];
  contentHash: string | null;
}

/** What a scan found: the synced paths, the ones to leave alone this pass, and problems. */
export interface ScanResult {
  entries: Map<string, LocalEntry>;
  /** Paths not to plan this pass (a problem, or a file changing while read): neither side acts on them. */
  skipped: Set<string>;
  problems: Map<string, { code: ProblemCode; message: string; signature: string }>;
  files: number;
  changed: number;
}

/** A stat's identity as a string (a problem is tried again once it changes). */
export function signatureOf(stat: FileStat): string {
  return `${stat.size}:${stat.mtimeMs}:${stat.ino}`;
}

/** Whether two stats name the same file contents as far as the file system tells. */
export function sameStat(a: FileStat, b: FileStat): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino;
}

/** The file changed while it was read: try again later. */
export class FileChangedError extends Error {
  constructor(path: string) {
    super(`${path} changed while it was read`);
    this.name = 'FileChangedError';
  }
}

/** The content hash of a block list (docs/api.md): sha256 over `<sha256>:<size>\n` lines. */
export function contentHashOfBlocks(blocks: readonly BlockRef[]): string {
  return createHash('sha256')
    .update(blocks.map((b) => `${b.sha256}:${b.size}\n`).join(''))
    .digest('hex');
}

function statOf(s: { size: number; mtimeMs: number; ino: number; mode: number }): FileStat {
  return { size: s.size, mtimeMs: s.mtimeMs, ino: s.ino, mode: s.mode };
}

/**
 * Reads a file block by block, handing each block to `onBlock` (for an upload) and hashing it;
 * answers the block list. Raises FileChangedError when the file's size, mtime or inode at the
 * end differ from `expected` or from the start: nothing read that way is ever committed.
 */
export async function readBlocks(
  file: string,
  expected: FileStat | undefined,
  onBlock?: (block: Uint8Array, ref: BlockRef) => Promise<void>,
): Promise<{ blocks: BlockRef[]; contentHash: string; stat: FileStat }> {
  const handle = await open(file, 'r');
  try {
    const before = statOf(await handle.stat());
    if (expected !== undefined && !sameStat(before, expected)) throw new FileChangedError(file);
    const blocks: BlockRef[] = [];
    // Hashing alone reads every block into one buffer, no larger than the file (a 4 KiB file
    // does not cost a zeroed 4 MiB); a caller given the blocks gets a fresh one each (it may
    // keep it past the next read).
    const reused = onBlock === undefined ? new Uint8Array(Math.min(maxBlockSize, before.size)) : undefined;
    for (let position = 0; ;) {
      const block = await readBlockAt(handle, position, before.size, reused);
      const filled = block.length;
      position += filled;
      if (filled === 0) break;
      const ref = { sha256: createHash('sha256').update(block).digest('hex'), size: filled };
      blocks.push(ref);
      await onBlock?.(block, ref);
      if (filled < maxBlockSize) break;
    }
    const after = statOf(await handle.stat());
    const named = statOf(await lstat(file));
    if (!sameStat(before, after) || !sameStat(before, named) || blocks.reduce((n, b) => n + b.size, 0) !== before.size) {
      throw new FileChangedError(file);
    }
    return { blocks, contentHash: contentHashOfBlocks(blocks), stat: before };
  } finally {
    await handle.close();
  }
}

/** How many names of a folder a scan stats at once, and how many small files it reads at once. */
const statParallelism = 16;

/** Files up to this size are read several at a time by a scan; a larger one is read alone. */
const parallelHashBytes = 256 * 1024;

/** `fn(0)` … `fn(count - 1)`, at most `limit` running at once; their results in order. */
async function boundedMap<R>(count: number, limit: number, fn: (i: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(count);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      results[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, lane));
  return results;
}

/**
 * `lstat` of every path, at most `limit` at once, in their order (undefined for a path that
 * cannot be stat-ed). Through fs's callbacks with one promise for them all: a promise and an
 * `await` per name cost the scan about twice the CPU of the calls themselves (ADR 89).
 */
export function lstatAll(paths: readonly string[], limit: number): Promise<(Stats | undefined)[]> {
  const results = new Array<Stats | undefined>(paths.length);
  if (paths.length === 0) return Promise.resolve(results);
  return new Promise((resolve) => {
    let next = 0;
    let done = 0;
    const finish = (i: number, stats: Stats | undefined): void => {
      results[i] = stats;
      if (++done === paths.length) resolve(results);
      else if (next < paths.length) start();
    };
    const start = (): void => {
      const i = next++;
      try {
        lstatCallback(paths[i]!, (err, stats) => finish(i, err === null ? stats : undefined));
      } catch {
        // A path fs refuses outright (not one readdir answers): as if it could not be stat-ed.
        queueMicrotask(() => finish(i, undefined));
      }
    };
    for (let k = 0; k < Math.min(limit, paths.length); k++) start();
  });
}

/** Scans the folder against the base and the hash cache (hashes only what changed). */
export async function scanFolder(dir: string, state: StateDb, base: ReadonlyMap<string, BaseRow>, rules: Ignore): Promise<ScanResult> {
  const result: ScanResult = { entries: new Map(), skipped: new Set(), problems: new Map(), files: 0, changed: 0 };
  const hashed: HashRow[] = [];
  const problem = (path: string, code: ProblemCode, message: string, signature = ''): void => {
    result.problems.set(path, { code, message, signature });
    result.skipped.add(path);
  };
  const walk = async (rel: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(rel === '' ? dir : join(dir, rel));
    } catch (err) {
      // A folder that is gone or unreadable (an unmounted disk) is not a folder whose files were
      // all deleted: the pass fails rather than deleting everything on the server.
      if (rel === '') throw new Error(`the folder ${dir} cannot be read: ${(err as Error).message}`, { cause: err });
      problem(rel, 'read_error', `the directory could not be read: ${(err as Error).message}`);
      result.entries.delete(rel);
      return;
    }
    names.sort();
    // Not normalised: a name that is not NFC would come back from the server under another
    // name, so it is refused (invalid_name) rather than renamed behind the user's back.
    const paths = names.map((name) => (rel === '' ? name : `${rel}/${name}`));
    const abs = (i: number): string => join(dir, rel, names[i]!);
    // The file system is asked several names at a time (each call waits on a thread of libuv's
    // pool); what it answers is recorded in the names' order, as one at a time would.
    const stats = await lstatAll(
      names.map((_, i) => abs(i)),
      statParallelism,
    );
    // The files to hash: those whose size, mtime or inode differ from the base and the hash cache.
    const toHash: number[] = [];
    const unchanged = new Map<number, { blocks: BlockRef[]; contentHash: string }>();
    for (let i = 0; i < names.length; i++) {
      const s = stats[i];
      if (s === undefined || !s.isFile() || isIgnored(rules, paths[i]!)) continue;
      const stat = statOf(s);
      const known = base.get(paths[i]!);
      if (known !== undefined && known.kind === 'file' && sameStat(known, stat) && known.contentHash !== null) {
        unchanged.set(i, { blocks: known.blocks, contentHash: known.contentHash });
        continue;
      }
      const cached = state.getHash(paths[i]!);
      if (cached !== undefined && sameStat(cached, stat)) unchanged.set(i, cached);
      else toHash.push(i);
    }
    // Small files are read a few at a time; a larger one alone, so that the reads' buffers (up to
    // 4 MiB each) stay one at a time.
    const reads = new Map<number, Awaited<ReturnType<typeof readBlocks>> | Error>();
    const read = async (i: number): Promise<void> => {
      try {
        reads.set(i, await readBlocks(abs(i), statOf(stats[i]!)));
      } catch (err) {
        reads.set(i, err as Error);
      }
    };
    const small = toHash.filter((i) => stats[i]!.size <= parallelHashBytes);
    await boundedMap(small.length, statParallelism, (k) => read(small[k]!));
    for (const i of toHash) if (!reads.has(i)) await read(i);
    for (let i = 0; i < names.length; i++) {
      const path = paths[i]!;
      const s = stats[i];
      if (s === undefined) continue; // gone since the listing: the next pass sees it as it is then
      if (isIgnored(rules, path, s.isDirectory())) continue;
      if (s.isSymbolicLink()) {
        problem(path, 'symlink', 'symbolic links are not followed');
        continue;
      }
      if (s.isDirectory()) {
        result.entries.set(path, { kind: 'directory', stat: statOf(s), blocks: [], contentHash: null });
        await walk(path);
        continue;
      }
      if (!s.isFile()) {
        problem(path, 'not_a_file', 'not a regular file (a socket, fifo or device)');
        continue;
      }
      result.files++;
      const stat = statOf(s);
      const same = unchanged.get(i);
      if (same !== undefined) {
        result.entries.set(path, { kind: 'file', stat, blocks: same.blocks, contentHash: same.contentHash });
        continue;
      }
      const outcome = reads.get(i)!;
      result.changed++;
      if (outcome instanceof Error) {
        if (outcome instanceof FileChangedError) result.skipped.add(path);
        else problem(path, 'read_error', `the file could not be read: ${outcome.message}`, signatureOf(stat));
        continue;
      }
      hashed.push({ path, ...outcome.stat, blocks: outcome.blocks, contentHash: outcome.contentHash });
      result.entries.set(path, { kind: 'file', stat: outcome.stat, blocks: outcome.blocks, contentHash: outcome.contentHash });
    }
  };
  await walk('');
  // One durable commit for the whole scan rather than one per file hashed.
  state.transaction(() => {
    for (const row of hashed) state.putHash(row);
    state.pruneHashes(new Set(result.entries.keys()));
  });
  return result;
}

/**
 * The block at `position` of a file of `size` bytes: up to 4 MiB, shorter only at the end (empty
 * past it). It is read into `into` when given, else into a fresh buffer of the block's size (an
 * upload may still hold the previous one; a small file costs its size, not 4 MiB). A file that
 * grew past `size` reads as ending there: the callers' check of its stat afterwards catches it.
 */
async function readBlockAt(handle: FileHandle, position: number, size: number, into?: Uint8Array): Promise<Uint8Array> {
  const want = Math.min(maxBlockSize, Math.max(0, size - position));
  const buffer = into === undefined ? new Uint8Array(want) : into.subarray(0, want);
  let filled = 0;
  while (filled < want) {
    const { bytesRead } = await handle.read(buffer, filled, want - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

/** The size of the reads `blockStream` makes. */
const blockStreamChunk = 256 * 1024;

/**
 * The `size` bytes of a file from `start`, read 256 KiB at a time as the stream is pulled (a
 * block sent without holding it whole, ADR 83). A file that ends before them errors the stream
 * with FileChangedError, so a request never waits for bytes that will not come. Each chunk is
 * counted by the collection pacer (ADR 75): they are garbage as soon as the socket has them.
 */
export function blockStream(abs: string, start: number, size: number): ReadableStream<Uint8Array> {
  let handle: FileHandle | undefined;
  let done = 0;
  const close = async (): Promise<void> => {
    const h = handle;
    handle = undefined;
    await h?.close();
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          handle ??= await open(abs, 'r');
          const want = Math.min(blockStreamChunk, size - done);
          const chunk = Buffer.allocUnsafe(want);
          const { bytesRead } = await handle.read(chunk, 0, want, start + done);
          if (bytesRead === 0) throw new FileChangedError(abs);
          done += bytesRead;
          processGcPacer.streamed(bytesRead);
          controller.enqueue(bytesRead === want ? chunk : chunk.subarray(0, bytesRead));
          if (done === size) {
            await close();
            controller.close();
          }
        } catch (err) {
          await close().catch(() => undefined);
          controller.error(err);
        }
      },
      async cancel() {
        await close();
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * A file's bytes in 4 MiB chunks for `upload` (which hashes what it sends: hash and upload are
 * one read); raises FileChangedError at the end when the file is no longer what was scanned,
 * before the commit, so a file edited during its upload is never committed half-old half-new.
 * With `buffers`, each chunk is read into one of them (the upload gives it back).
 */
export async function* fileChunks(
  abs: string,
  expected: FileStat,
  signal?: AbortSignal,
  buffers?: BlockBuffers,
): AsyncGenerator<Uint8Array> {
  const handle = await open(abs, 'r');
  try {
    const s = await handle.stat();
    if (!sameStat({ size: s.size, mtimeMs: s.mtimeMs, ino: s.ino, mode: s.mode }, expected)) throw new FileChangedError(abs);
    let total = 0;
    for (let position = 0; ;) {
      signal?.throwIfAborted();
      // Only a whole 4 MiB block is read into a pooled buffer: a small file's (or a file's last,
      // shorter) block gets a buffer of its size, so that sixteen small uploads at once do not
      // leave sixteen 4 MiB buffers (64 MiB) in the pool for the life of the agent.
      const into = expected.size - position >= maxBlockSize ? buffers?.take() : undefined;
      let block: Uint8Array;
      try {
        block = await readBlockAt(handle, position, expected.size, into);
      } catch (err) {
        if (into !== undefined) buffers!.give(into);
        throw err;
      }
      const filled = block.length;
      position += filled;
      total += filled;
      if (filled > 0) yield block;
      else if (into !== undefined) buffers!.give(into);
      if (filled < maxBlockSize) break;
    }
    const after = await handle.stat();
    const named = await lstat(abs);
    const now = { size: after.size, mtimeMs: after.mtimeMs, ino: after.ino, mode: after.mode };
    if (
      !sameStat(now, expected) ||
      !sameStat({ size: named.size, mtimeMs: named.mtimeMs, ino: named.ino, mode: named.mode }, expected) ||
      total !== expected.size
    )
      throw new FileChangedError(abs);
  } finally {
    await handle.close();
  }
}
