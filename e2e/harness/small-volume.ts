// A small, size-limited filesystem for tests of a data volume that fills up: a tmpfs mounted
// with `size=` (needs root and mount), so ENOSPC and statfs come from the kernel, not a fake.
import { execFile } from 'node:child_process';
import { mkdtemp, open, rmdir, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A mounted small filesystem; `unmount` removes it and its mount point. */
export interface SmallVolume {
  path: string;
  unmount(): Promise<void>;
}

/** Mounts a tmpfs of `bytes` on a fresh temporary directory. */
export async function mountSmallVolume(bytes: number): Promise<SmallVolume> {
  const path = await mkdtemp(join(tmpdir(), 'meshwork-small-volume-'));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', path]);
  } catch (err) {
    await rmdir(path);
    throw new Error(
      `could not mount a ${bytes}-byte tmpfs on ${path} (needs root and mount): ${String((err as { stderr?: string }).stderr ?? err)}`,
      {
        cause: err,
      },
    );
  }
  return {
    path,
    unmount: async () => {
      // Lazy: a process that still has a file open on it must not keep the mount alive.
      await run('umount', ['-l', path]);
      await rmdir(path);
    },
  };
}

function isNoSpace(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOSPC';
}

/**
 * Writes the file `name` in `dir` until not even one more byte fits (the filesystem answers
 * ENOSPC) and resolves with the bytes written; with `leaveBytes`, stops that many bytes short
 * of what statfs reports available instead. Errors other than ENOSPC are thrown.
 */
export async function fillVolume(dir: string, name: string, leaveBytes = 0): Promise<number> {
  const info = await statfs(dir);
  const target = leaveBytes > 0 ? info.bavail * info.bsize - leaveBytes : Number.POSITIVE_INFINITY;
  const chunk = Buffer.alloc(64 * 1024, 0xa5);
  const handle = await open(join(dir, name), 'w');
  let written = 0;
  try {
    while (written < target) {
      try {
        written += (await handle.write(chunk, 0, Math.min(chunk.length, target - written))).bytesWritten;
      } catch (err) {
        if (!isNoSpace(err)) throw err;
        break;
      }
    }
    if (leaveBytes > 0) return written;
    // The last bytes one at a time, until the filesystem refuses even one.
    for (;;) {
      try {
        written += (await handle.write(chunk, 0, 1)).bytesWritten;
      } catch (err) {
        if (!isNoSpace(err)) throw err;
        return written;
      }
    }
  } finally {
    await handle.close();
  }
}
