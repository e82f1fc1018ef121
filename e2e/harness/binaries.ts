// Where the pinned infrastructure binaries live, and a clear error when they do not.
import { accessSync, constants } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MissingBinaryError } from './errors.ts';

/** The repository root (two levels above this file). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The directory `make tools` builds into; MESHWORK_BIN overrides it. */
export function binDir(): string {
  return process.env.MESHWORK_BIN ?? join(repoRoot, 'bin');
}

/** Path of a pinned binary, or a MissingBinaryError telling to run `make tools`. */
export function requireBinary(name: string): string {
  const path = join(binDir(), name);
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new MissingBinaryError(name, path);
  }
  return path;
}
