// Turns a directory read-only in place and back, as a failing disk remounted read-only by the
// kernel would look to a process using it: a read-only bind mount over itself (needs root).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Makes `path` read-only (writes fail with EROFS) until makeWritable(path). */
export async function makeReadOnly(path: string): Promise<void> {
  try {
    await run('mount', ['--bind', path, path]);
    await run('mount', ['-o', 'remount,bind,ro', path]);
  } catch (err) {
    throw new Error(`could not make ${path} read-only (needs root and mount): ${String((err as { stderr?: string }).stderr ?? err)}`, {
      cause: err,
    });
  }
}

/** Undoes makeReadOnly; a no-op when `path` is not read-only mounted. */
export async function makeWritable(path: string): Promise<void> {
  await run('umount', [path]).catch(() => undefined);
}
