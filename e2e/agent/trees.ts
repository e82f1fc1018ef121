// Folder trees for the agent's tests and benchmark: writing files with known contents, hashing
// a tree (relative path → sha256), and waiting until a tree holds given files byte for byte.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { finished } from 'node:stream/promises';
import { waitFor } from '../harness/wait.ts';

/** sha256 of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Files to leave out of a tree: the agent's, Syncthing's and rclone's own bookkeeping. */
export const bookkeeping = (relPath: string): boolean =>
  /(^|\/)(\.meshwork-tmp-[^/]*|\.meshwork|\.stfolder|\.stversions|\.syncthing\.[^/]*\.tmp|~syncthing~[^/]*\.tmp)(\/|$)/.test(relPath) ||
  /\.partial$/.test(relPath);

/** Hashes already computed, by absolute path, valid while size and mtime are unchanged. */
export type HashCache = Map<string, { size: number; mtimeMs: number; sha: string }>;

/**
 * Every regular file under `dir` (relative path → sha256), bookkeeping left out, sorted by path.
 * With `cache`, a file whose size and mtime did not change is not read again.
 */
export async function treeHashes(
  dir: string,
  options: { exclude?: (relPath: string) => boolean; cache?: HashCache } = {},
): Promise<Map<string, string>> {
  const exclude = options.exclude ?? bookkeeping;
  const result = new Map<string, string>();
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const rel = relative(dir, path);
    if (exclude(rel)) continue;
    const info = await stat(path).catch(() => undefined);
    if (!info) continue; // gone since the listing
    const cached = options.cache?.get(path);
    if (cached && cached.size === info.size && cached.mtimeMs === info.mtimeMs) {
      result.set(rel, cached.sha);
      continue;
    }
    const sha = await sha256File(path).catch(() => undefined);
    if (sha === undefined) continue;
    options.cache?.set(path, { size: info.size, mtimeMs: info.mtimeMs, sha });
    result.set(rel, sha);
  }
  return new Map([...result].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Whether two trees (from treeHashes) hold the same paths with the same contents. */
export function sameTree(a: Map<string, string>, b: Map<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [path, sha] of a) if (b.get(path) !== sha) return false;
  return true;
}

/** What differs between two trees, for a failure message (at most `limit` lines). */
export function treeDiff(a: Map<string, string>, b: Map<string, string>, limit = 20): string {
  const lines: string[] = [];
  for (const [path, sha] of a) {
    const other = b.get(path);
    if (other === undefined) lines.push(`only in first: ${path}`);
    else if (other !== sha) lines.push(`differs: ${path}`);
  }
  for (const path of b.keys()) if (!a.has(path)) lines.push(`only in second: ${path}`);
  return lines.slice(0, limit).join('\n') + (lines.length > limit ? `\n... ${lines.length - limit} more` : '');
}

/** Writes `count` files of `size` random bytes as `prefix/NNNNN.bin` under `dir`, one after another; returns their hashes. */
export async function writeSmallFiles(dir: string, prefix: string, count: number, size: number): Promise<Map<string, string>> {
  await mkdir(join(dir, prefix), { recursive: true });
  const written = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const rel = join(prefix, `${String(i).padStart(5, '0')}.bin`);
    const data = randomBytes(size);
    await writeFile(join(dir, rel), data);
    written.set(rel, createHash('sha256').update(data).digest('hex'));
  }
  return written;
}

/** Writes `bytes` random bytes to `path` in 4 MiB chunks (never all in memory); returns its sha256. */
export async function writeRandomFile(path: string, bytes: number): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  const chunkSize = 4 * 1024 * 1024;
  for (let done = 0; done < bytes; done += chunkSize) {
    const chunk = randomBytes(Math.min(chunkSize, bytes - done));
    hash.update(chunk);
    if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', resolve));
  }
  out.end();
  await finished(out);
  return hash.digest('hex');
}

/**
 * Waits until every file of `expected` (relative path → sha256) is under `dir` with that content;
 * a file is hashed only once its size is `sizes.get(path)` (when given), so polling stays cheap:
 * each poll lists the folders that still wait for files once, and only files found there are
 * looked at (the benchmark's polling shares the machine with what it measures).
 * Resolves with the time it was seen to hold, from performance.now(): when the last file to
 * match was found in place at its size (the `stat` before the hash that proved its content),
 * not after that hash, so that the check's own reading of a large file is not counted as the
 * writer's time. The writers measured (the agent, Syncthing) put a file in place by renaming a
 * finished temporary file, so what the `stat` found is what the hash then read.
 */
export async function waitForFiles(
  dir: string,
  expected: Map<string, string>,
  options: { timeoutMs: number; sizes?: Map<string, number>; description?: string; intervalMs?: number },
): Promise<number> {
  const pending = new Map(expected);
  let heldAt = Number.NEGATIVE_INFINITY;
  return waitFor(
    async () => {
      const listed = new Map<string, Set<string> | undefined>();
      for (const [rel, sha] of pending) {
        const path = join(dir, rel);
        const parent = dirname(path);
        if (!listed.has(parent))
          listed.set(
            parent,
            await readdir(parent).then(
              (names) => new Set(names),
              () => undefined,
            ),
          );
        if (!listed.get(parent)?.has(basename(path))) continue;
        const info = await stat(path).catch(() => undefined);
        const seenAt = performance.now();
        if (!info?.isFile()) continue;
        const size = options.sizes?.get(rel);
        if (size !== undefined && info.size !== size) continue;
        const actual =
          info.size <= 1 << 20
            ? await readFile(path).then(
                (data) => createHash('sha256').update(data).digest('hex'),
                () => undefined,
              )
            : await sha256File(path).catch(() => undefined);
        if (actual === sha) {
          pending.delete(rel);
          heldAt = Math.max(heldAt, seenAt);
        }
      }
      return pending.size === 0 ? heldAt : undefined;
    },
    {
      description: options.description ?? `${expected.size} files under ${dir} byte for byte`,
      timeoutMs: options.timeoutMs,
      intervalMs: options.intervalMs ?? 100,
    },
  );
}
